//! A worker process holding many realtime clients for the coordinator. A process may hold
//! only ~20,000 open files here, so large workloads spread over several workers, each
//! connecting from its own 127.0.0.x address. Commands arrive as JSON lines on stdin;
//! answers go out as JSON lines on stdout.
//!
//! A client is a Qiao WebSocket (`hello`, then events) or a Matrix `/sync` long-poll loop.
//! While measuring, every received message whose body carries the run tag is counted per
//! conversation, checked for duplicates and order, and timed from the send time scheduled
//! in its body (`t=<unix micros>`), so a late sender cannot hide latency.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::server::BoxError;
use crate::stats::Latency;

#[derive(clap::Args, Clone, Debug)]
pub struct WorkerArgs {
    /// The server's base URL (http://host:port).
    #[arg(long)]
    pub url: String,
    /// Local address to connect from (spreads connections over 127.0.0.x).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// `qiao` (WebSocket) or `matrix` (client-server API `/sync`).
    #[arg(long, default_value = "qiao")]
    pub protocol: String,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ClientSpec {
    pub token: String,
    /// Where to resume from: a Qiao stream position, or a Matrix `since` token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_from: Option<String>,
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Cmd {
    /// Connect these clients, `concurrency` at a time. With `complete_after`, each client's
    /// time from starting to connect until it has received that many tagged messages is
    /// recorded (the resync workload).
    Connect {
        clients: Vec<ClientSpec>,
        concurrency: usize,
        complete_after: Option<u64>,
    },
    /// Start counting messages whose body contains `tag` (resets the counts).
    Measure {
        tag: String,
    },
    /// With `views`, also what each client received in each conversation (for the final
    /// check: it is larger than the counts).
    Report {
        #[serde(default)]
        views: bool,
    },
    /// Close every client.
    Close,
    Quit,
}

#[derive(Serialize, Deserialize, Debug, Default)]
pub struct Report {
    /// Messages with the run tag received, per conversation (summed over clients).
    pub received: HashMap<String, u64>,
    pub duplicates: u64,
    /// Times a client saw a conversation's sequence skip (or Matrix said `limited`).
    pub gaps: u64,
    /// Times a client saw a conversation's sequence go backwards.
    pub out_of_order: u64,
    /// Delivery latency from the scheduled send time, as histogram (microseconds, count).
    pub latency: Vec<(u64, u64)>,
    /// With `complete_after`: time to catch up, per client.
    pub complete: Vec<(u64, u64)>,
    /// Clients the server closed or lost, with the first close reasons seen.
    pub lost: u64,
    pub lost_reasons: Vec<String>,
    /// Frames that looked like message events but could not be read.
    pub unreadable: u64,
    /// With `Report { views }`: what the clients received per conversation, as
    /// (conversation, messages, order digest, clients that received exactly that, the
    /// wrapping sum of those clients' [`who`]). Every member of a room must have received the
    /// same messages in the same order, and nobody else any.
    #[serde(default)]
    pub views: Vec<View5>,
}

/// (conversation, messages, order digest, clients, sum of their identities).
pub type View5 = (String, u64, u64, u64, u64);

/// A client's identity in views: a hash of its token (the coordinator knows every token).
pub fn who(token: &str) -> u64 {
    id_hash(token)
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Answer {
    /// `heads[i]` is where client i could resume from (Qiao: `head` at `ready`; Matrix: the
    /// first `next_batch`), empty if it failed.
    Connected {
        ok: usize,
        failed: usize,
        connect_us: Vec<(u64, u64)>,
        heads: Vec<String>,
        errors: Vec<String>,
    },
    Report(Report),
    Done,
}

struct Shared {
    tag: Option<String>,
    report: Report,
    latency: Latency,
    complete: Latency,
    /// Per client (in the order connected): what it received since the last `Measure`.
    clients: Vec<Seen>,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            tag: None,
            report: Report::default(),
            latency: Latency::new(),
            complete: Latency::new(),
            clients: Vec::new(),
        }
    }

    /// Starts counting `tag` afresh; clients stay, what they saw is forgotten.
    fn measure(&mut self, tag: String) {
        let (lost, lost_reasons) = (self.report.lost, std::mem::take(&mut self.report.lost_reasons));
        let clients = std::mem::take(&mut self.clients);
        *self = Shared::new();
        self.clients = clients.into_iter().map(|c| Seen { who: c.who, ..Seen::default() }).collect();
        self.tag = Some(tag);
        self.report.lost = lost;
        self.report.lost_reasons = lost_reasons;
    }

    /// Each conversation's distinct (messages, digest) with the clients that saw exactly that.
    fn views(&self) -> Vec<View5> {
        let mut by: HashMap<(&str, u64, u64), (u64, u64)> = HashMap::new();
        for seen in &self.clients {
            for (conv, v) in &seen.convs {
                let e = by.entry((conv.as_str(), v.count, v.digest)).or_default();
                e.0 += 1;
                e.1 = e.1.wrapping_add(seen.who);
            }
        }
        by.into_iter()
            .map(|((conv, count, digest), (clients, who))| (conv.to_owned(), count, digest, clients, who))
            .collect()
    }

    /// Messages received per conversation, summed over clients.
    fn received(&self) -> HashMap<String, u64> {
        let mut out: HashMap<String, u64> = HashMap::new();
        for (conv, v) in self.clients.iter().flat_map(|c| &c.convs) {
            *out.entry(conv.clone()).or_default() += v.count;
        }
        out
    }
}

type SharedRef = Arc<Mutex<Shared>>;

fn lock(s: &SharedRef) -> MutexGuard<'_, Shared> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(0))
}

/// `t=<micros>` in a body: when the message was scheduled to be sent.
pub fn scheduled_at(body: &str) -> Option<u64> {
    let rest = &body[body.find("t=")? + 2..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The parts of a Qiao `message.created` frame the bench needs: (conversation, seq, body).
/// Found by scanning instead of parsing, so the load generator's core is not the limit:
/// the top-level fields precede `data` in the server's encoding, and bench bodies hold no
/// quotes. `Err` for a message event that does not have that shape.
fn scan_event(text: &str) -> Result<Option<(&str, i64, &str)>, ()> {
    if !text.starts_with(r#"{"op":"event""#) {
        return Ok(None);
    }
    let data = text.find(r#""data":"#).ok_or(())?;
    let (head, tail) = text.split_at(data);
    if !tail.starts_with(r#""data":{"type":"message.created""#) {
        return Ok(None);
    }
    let after = |hay: &'static str, s: &str| s.find(hay).map(|i| i + hay.len());
    let c = after(r#""conversation_id":""#, head).ok_or(())?;
    let conv = head.get(c..c + 36).ok_or(())?;
    let s = after(r#""seq":"#, head).ok_or(())?;
    let seq = head[s..].split(|ch: char| !ch.is_ascii_digit()).next().and_then(|n| n.parse().ok()).ok_or(())?;
    let b = after(r#""body":""#, tail).ok_or(())?;
    let body = tail[b..].split('"').next().ok_or(())?;
    Ok(Some((conv, seq, body)))
}

/// One client's view of each conversation, for the order checks.
#[derive(Default)]
struct Seen {
    /// Who this is ([`who`]).
    who: u64,
    /// Per conversation (a client is in a few: searched in order, no hashing per message).
    convs: Vec<(String, View)>,
    /// Matrix has no per-room sequence: hashes of the event ids seen, for duplicates.
    ids: HashSet<u64>,
    received: u64,
}

/// What one client received in one conversation.
#[derive(Default)]
struct View {
    last_seq: Option<i64>,
    count: u64,
    /// Folds the messages' identities (Qiao: seq; Matrix: event id) in arrival order, so
    /// that members agree only if they received the same messages in the same order.
    digest: u64,
}

impl View {
    fn add(&mut self, id: u64) {
        self.count += 1;
        self.digest = (self.digest.rotate_left(7) ^ id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A stable 64-bit identity for an event id (the same in every worker process).
fn id_hash(id: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(id)
}

/// What one client reports for one received message.
struct Arrival<'a> {
    conv: &'a str,
    seq: Option<i64>,
    id: Option<&'a str>,
    body: &'a str,
}

/// Counts one arrival of client `client`; returns whether it has now received
/// `complete_after`.
fn record(shared: &SharedRef, client: usize, a: Arrival<'_>, complete: Option<(u64, Instant)>) -> bool {
    let now = now_micros();
    let mut guard = lock(shared);
    let s = &mut *guard;
    let Some(tag) = s.tag.as_deref() else { return false };
    if !a.body.contains(tag) {
        return false;
    }
    let Some(seen) = s.clients.get_mut(client) else { return false };
    let i = match seen.convs.iter().position(|(c, _)| c == a.conv) {
        Some(i) => i,
        None => {
            seen.convs.push((a.conv.to_owned(), View::default()));
            seen.convs.len() - 1
        }
    };
    let view = &mut seen.convs[i].1;
    if let Some(seq) = a.seq {
        if let Some(prev) = view.last_seq {
            if seq == prev {
                s.report.duplicates += 1;
            } else if seq < prev {
                s.report.out_of_order += 1;
            } else if seq > prev + 1 {
                s.report.gaps += 1;
            }
        }
        view.last_seq = Some(view.last_seq.map_or(seq, |p| p.max(seq)));
        view.add(seq as u64);
    }
    if let Some(id) = a.id {
        let h = id_hash(id);
        view.add(h);
        if !seen.ids.insert(h) {
            s.report.duplicates += 1;
        }
    }
    if let Some(t) = scheduled_at(a.body) {
        s.latency.record(Duration::from_micros(now.saturating_sub(t)));
    }
    seen.received += 1;
    let received = seen.received;
    match complete {
        Some((n, t0)) if received == n => {
            s.complete.record(t0.elapsed());
            true
        }
        _ => false,
    }
}

fn lost(shared: &SharedRef, reason: String) {
    let mut s = lock(shared);
    s.report.lost += 1;
    if s.report.lost_reasons.len() < 5 {
        s.report.lost_reasons.push(reason);
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn tcp(url: &str, bind: &str) -> Result<tokio::net::TcpStream, BoxError> {
    let server: SocketAddr = url.trim_start_matches("http://").trim_end_matches('/').parse()?;
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(bind.parse()?, 0))?;
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Connects, says hello and waits for `ready`; returns the socket, the head, and any
/// frames that arrived right after `ready` are left in the socket for the reader.
async fn qiao_connect(url: &str, bind: &str, spec: &ClientSpec) -> Result<(Ws, String), BoxError> {
    tokio::time::timeout(Duration::from_secs(60), qiao_handshake(url, bind, spec))
        .await
        .map_err(|_| "no ready frame within 60 s")?
}

async fn qiao_handshake(url: &str, bind: &str, spec: &ClientSpec) -> Result<(Ws, String), BoxError> {
    let stream = tcp(url, bind).await?;
    let ws_url = format!("{}/api/v1/ws", url.replacen("http://", "ws://", 1));
    // Small buffers: the bench holds up to ~19,000 clients on this machine.
    let config = WebSocketConfig::default().read_buffer_size(16 * 1024).write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(ws_url, stream, Some(config)).await?;
    let hello = match spec.resume_from.as_deref().and_then(|p| p.parse::<i64>().ok()) {
        Some(p) => format!(r#"{{"op":"hello","token":"{}","resume_from":{p}}}"#, spec.token),
        None => format!(r#"{{"op":"hello","token":"{}"}}"#, spec.token),
    };
    ws.send(Message::Text(hello.into())).await?;
    match ws.next().await {
        Some(Ok(Message::Text(t))) if t.starts_with(r#"{"op":"ready""#) => {
            let v: serde_json::Value = serde_json::from_str(&t)?;
            Ok((ws, v["head"].as_i64().unwrap_or(0).to_string()))
        }
        other => Err(format!("no ready frame: {other:?}").into()),
    }
}

/// Reads one WebSocket until it ends or the worker is told to close.
/// What a client's reader reports to: the worker's counts, its slot there, when to stop, and
/// (resync) after how many messages it has caught up.
struct Reader {
    shared: SharedRef,
    client: usize,
    stop: watch::Receiver<bool>,
    complete: Option<(u64, Instant)>,
}

async fn qiao_read(mut ws: Ws, r: Reader) {
    let Reader { shared, client, mut stop, complete } = r;
    loop {
        let msg = tokio::select! {
            m = ws.next() => m,
            _ = stop.changed() => {
                let _ = ws.close(None).await;
                return;
            }
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(frame))) => {
                let why = frame.map_or("no reason".into(), |f| format!("{} {}", f.code, f.reason));
                lost(&shared, format!("closed by the server: {why}"));
                return;
            }
            other => {
                lost(&shared, format!("connection ended: {other:?}"));
                return;
            }
        };
        match scan_event(&text) {
            Ok(Some((conv, seq, body))) => {
                record(&shared, client, Arrival { conv, seq: Some(seq), id: None, body }, complete);
            }
            Ok(None) => {}
            Err(()) => lock(&shared).report.unreadable += 1,
        }
    }
}

/// The Matrix `/sync` filter: new `m.room.message` timeline events only, and enough of
/// them per room that a busy room is never `limited` (which would skip events).
const MATRIX_FILTER: &str = r#"{"presence":{"types":[]},"account_data":{"types":[]},"room":{"timeline":{"limit":1000,"types":["m.room.message"]},"state":{"types":[],"lazy_load_members":true},"ephemeral":{"types":[]},"account_data":{"types":[]}}}"#;

fn matrix_client(bind: &str) -> Result<reqwest::Client, BoxError> {
    Ok(reqwest::Client::builder()
        .local_address(Some(bind.parse()?))
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(120))
        .build()?)
}

async fn matrix_sync(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    since: Option<&str>,
    timeout_ms: u64,
) -> Result<serde_json::Value, BoxError> {
    let mut query = vec![("filter", MATRIX_FILTER.to_owned()), ("timeout", timeout_ms.to_string())];
    if let Some(s) = since {
        query.push(("since", s.to_owned()));
    }
    let res = http.get(format!("{url}/_matrix/client/v3/sync")).query(&query).bearer_auth(token).send().await?;
    let status = res.status();
    let body = res.bytes().await?;
    if !status.is_success() {
        return Err(format!("sync: {status} {}", String::from_utf8_lossy(&body)).into());
    }
    Ok(serde_json::from_slice(&body)?)
}

/// Long-polls `/sync` until told to close, counting tagged messages.
async fn matrix_read(http: reqwest::Client, url: String, token: String, mut since: String, r: Reader) {
    let Reader { shared, client, mut stop, complete } = r;
    loop {
        let res = tokio::select! {
            r = matrix_sync(&http, &url, &token, Some(&since), 30_000) => r,
            _ = stop.changed() => return,
        };
        let v = match res {
            Ok(v) => v,
            Err(e) => {
                lost(&shared, e.to_string());
                return;
            }
        };
        if let Some(rooms) = v["rooms"]["join"].as_object() {
            for (room, r) in rooms {
                if r["timeline"]["limited"].as_bool() == Some(true) {
                    lock(&shared).report.gaps += 1;
                }
                for e in r["timeline"]["events"].as_array().into_iter().flatten() {
                    let (Some(body), Some(id)) = (e["content"]["body"].as_str(), e["event_id"].as_str()) else {
                        lock(&shared).report.unreadable += 1;
                        continue;
                    };
                    record(&shared, client, Arrival { conv: room, seq: None, id: Some(id), body }, complete);
                }
            }
        }
        match v["next_batch"].as_str() {
            Some(n) => since = n.to_owned(),
            None => {
                lost(&shared, "sync without next_batch".into());
                return;
            }
        }
    }
}

/// Connects one client and starts its reader; returns (time to connect, where it could
/// resume from).
async fn connect(
    args: &WorkerArgs,
    spec: ClientSpec,
    shared: SharedRef,
    stop: watch::Receiver<bool>,
    complete_after: Option<u64>,
) -> Result<(Duration, String), BoxError> {
    let t0 = Instant::now();
    let complete = complete_after.map(|n| (n, t0));
    let client = {
        let mut s = lock(&shared);
        s.clients.push(Seen { who: who(&spec.token), ..Seen::default() });
        s.clients.len() - 1
    };
    if args.protocol == "matrix" {
        let http = matrix_client(&args.bind)?;
        // Resuming is a `/sync` from the old token: the reader's first request catches up.
        let since = match spec.resume_from {
            Some(since) => since,
            None => {
                let first = matrix_sync(&http, &args.url, &spec.token, None, 0).await?;
                first["next_batch"].as_str().ok_or("initial sync without next_batch")?.to_owned()
            }
        };
        let took = t0.elapsed();
        let reader = Reader { shared, client, stop, complete };
        tokio::spawn(matrix_read(http, args.url.clone(), spec.token, since.clone(), reader));
        Ok((took, since))
    } else {
        let (ws, head) = qiao_connect(&args.url, &args.bind, &spec).await?;
        let took = t0.elapsed();
        tokio::spawn(qiao_read(ws, Reader { shared, client, stop, complete }));
        Ok((took, head))
    }
}

pub async fn run(args: WorkerArgs) -> Result<(), BoxError> {
    let shared: SharedRef = Arc::new(Mutex::new(Shared::new()));
    let (mut stop_tx, mut stop_rx) = watch::channel(false);
    let args = Arc::new(args);
    let mut stdout = tokio::io::stdout();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let answer = match serde_json::from_str::<Cmd>(&line)? {
            Cmd::Connect { clients, concurrency, complete_after } => {
                let gate = Arc::new(Semaphore::new(concurrency.max(1)));
                let mut tasks = Vec::with_capacity(clients.len());
                for spec in clients {
                    let (gate, args, shared, stop) = (gate.clone(), args.clone(), shared.clone(), stop_rx.clone());
                    tasks.push(tokio::spawn(async move {
                        let _permit = gate.acquire().await;
                        connect(&args, spec, shared, stop, complete_after).await.map_err(|e| e.to_string())
                    }));
                }
                let (mut ok, mut failed, mut lat, mut heads, mut errors) =
                    (0, 0, Latency::new(), Vec::new(), Vec::new());
                for t in tasks {
                    match t.await? {
                        Ok((took, head)) => {
                            ok += 1;
                            lat.record(took);
                            heads.push(head);
                        }
                        Err(e) => {
                            failed += 1;
                            heads.push(String::new());
                            if errors.len() < 5 {
                                errors.push(e);
                            }
                        }
                    }
                }
                Answer::Connected { ok, failed, connect_us: lat.samples(), heads, errors }
            }
            Cmd::Measure { tag } => {
                lock(&shared).measure(tag);
                Answer::Done
            }
            Cmd::Report { views } => {
                let s = lock(&shared);
                let r = &s.report;
                Answer::Report(Report {
                    received: s.received(),
                    duplicates: r.duplicates,
                    gaps: r.gaps,
                    out_of_order: r.out_of_order,
                    latency: s.latency.samples(),
                    complete: s.complete.samples(),
                    lost: r.lost,
                    lost_reasons: r.lost_reasons.clone(),
                    unreadable: r.unreadable,
                    views: if views { s.views() } else { Vec::new() },
                })
            }
            Cmd::Close => {
                let _ = stop_tx.send(true);
                // Clients connected later answer to a fresh signal.
                (stop_tx, stop_rx) = watch::channel(false);
                tokio::time::sleep(Duration::from_millis(500)).await;
                Answer::Done
            }
            Cmd::Quit => break,
        };
        let mut out = serde_json::to_vec(&answer)?;
        out.push(b'\n');
        stdout.write_all(&out).await?;
        stdout.flush().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_tell_members_apart_by_what_they_received_and_in_which_order() {
        let shared: SharedRef = Arc::new(Mutex::new(Shared::new()));
        lock(&shared).clients = (0..3).map(|i| Seen { who: who(&format!("t{i}")), ..Seen::default() }).collect();
        lock(&shared).measure("r1".into());
        let arrive = |client, seq: i64| {
            let body = format!("bench r1 t=1 n={seq}");
            record(&shared, client, Arrival { conv: "c", seq: Some(seq), id: None, body: &body }, None);
        };
        // Clients 0 and 1 get 1, 2, 3; client 2 gets 1, 3, 2 (out of order).
        for (client, seqs) in [(0, [1, 2, 3]), (1, [1, 2, 3]), (2, [1, 3, 2])] {
            for seq in seqs {
                arrive(client, seq);
            }
        }
        let mut views = lock(&shared).views();
        views.sort_by_key(|v| std::cmp::Reverse(v.3));
        assert_eq!(views.len(), 2, "{views:?}");
        assert_eq!((views[0].1, views[0].3), (3, 2));
        assert_eq!(views[0].4, who("t0").wrapping_add(who("t1")));
        assert_eq!((views[1].1, views[1].3, views[1].4), (3, 1, who("t2")));
        assert_eq!(lock(&shared).received()["c"], 9);
        assert_eq!(lock(&shared).report.out_of_order, 1);
        // Untagged messages are not counted, and a new measurement forgets the old one.
        record(&shared, 0, Arrival { conv: "c", seq: Some(4), id: None, body: "other" }, None);
        lock(&shared).measure("r2".into());
        assert!(lock(&shared).views().is_empty());
    }

    #[test]
    fn scans_message_frames() {
        let f = r#"{"op":"event","pos":9,"at":1,"conversation_id":"0190a0b0-c0d0-7000-8000-000000000001","seq":57,"data":{"type":"message.created","message":{"id":"x","seq":57,"body":"bench r1 t=123 n=4","x":1},"thread":null}}"#;
        let (conv, seq, body) = scan_event(f).unwrap().unwrap();
        assert_eq!((conv, seq, body), ("0190a0b0-c0d0-7000-8000-000000000001", 57, "bench r1 t=123 n=4"));
        assert_eq!(scheduled_at(body), Some(123));
        assert_eq!(scan_event(r#"{"op":"ready","head":3}"#), Ok(None));
        let other = r#"{"op":"event","pos":9,"at":1,"data":{"type":"presence"}}"#;
        assert_eq!(scan_event(other), Ok(None));
        assert_eq!(scan_event(r#"{"op":"event","pos":9}"#), Err(()));
    }
}
