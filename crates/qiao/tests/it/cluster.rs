//! Cluster mode with real servers: two or three Qiao nodes in this process, each on its own
//! runtime (so one can be killed outright), sharing a real PostgreSQL database and a real
//! `nats-server` (started here on a loopback port, so a test can stop and restart it).
//!
//! Skipped when PostgreSQL or nats-server is missing, unless `QIAO_REQUIRE_POSTGRES` /
//! `QIAO_REQUIRE_NATS` say they must be there (as `scripts/test` does).

use std::collections::HashSet;
use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use qiao::Config;
use qiao_store::testing::TestDb;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

use crate::conversations::channel;
use crate::harness::{Api, Auth};
use crate::ws::Ws;

/// A `nats-server` on a loopback port, stoppable and restartable on the same port.
struct Nats {
    bin: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Nats {
    fn start() -> Option<Nats> {
        let bin = std::env::var_os("QIAO_TEST_NATS_SERVER").map(PathBuf::from).or_else(|| {
            ["/usr/sbin/nats-server", "/usr/bin/nats-server"].iter().map(PathBuf::from).find(|p| p.exists())
        });
        let Some(bin) = bin else {
            assert!(std::env::var_os("QIAO_REQUIRE_NATS").is_none(), "QIAO_REQUIRE_NATS is set but no nats-server");
            return None;
        };
        let port = StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut nats = Nats { bin, port, child: None };
        nats.run();
        Some(nats)
    }

    fn run(&mut self) {
        let child = Command::new(&self.bin)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        for _ in 0..600 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("nats-server did not start on port {}", self.port);
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One Qiao node on its own runtime and thread: `kill` drops the runtime with everything on
/// it (sockets, database connections, queued writes), like a crashed process.
struct Node {
    url: String,
    setup_token: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    kill: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _data: tempfile::TempDir,
}

impl Node {
    fn start(db: &str, bus: &str, files: &std::path::Path, tweak: fn(&mut Config)) -> Node {
        Node::try_start_with(db, bus, files.display().to_string(), tweak)
            .unwrap_or_else(|e| panic!("the node did not start: {e}"))
    }

    /// Starts a node, or returns why it refused to start.
    fn try_start(db: &str, bus: &str, file_store: String) -> Result<Node, String> {
        Node::try_start_with(db, bus, file_store, |_| {})
    }

    fn try_start_with(db: &str, bus: &str, file_store: String, tweak: fn(&mut Config)) -> Result<Node, String> {
        Node::try_start_in(db, bus, file_store, tempfile::tempdir().unwrap(), tweak)
    }

    /// [`Node::try_start_with`] in the data directory `data`.
    fn try_start_in(
        db: &str,
        bus: &str,
        file_store: String,
        data: tempfile::TempDir,
        tweak: fn(&mut Config),
    ) -> Result<Node, String> {
        let mut config = Config::defaults();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.database = qiao::config::Secret(db.to_owned());
        config.bus = qiao::config::Secret(bus.to_owned());
        config.data_dir = data.path().to_path_buf();
        config.file_store = file_store;
        config.password_memory_kib = 64;
        config.password_iterations = 1;
        config.message_rate_per_second = 1000.0;
        config.message_burst = 1000.0;
        tweak(&mut config);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<qiao::Ready, String>>();
        let failed_tx = ready_tx.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let (kill, killed) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let serve = qiao::serve_with(
                    config,
                    listener,
                    async move {
                        let _ = stopped.await;
                    },
                    move |ready| {
                        let _ = ready_tx.send(Ok(ready));
                    },
                );
                let result = tokio::select! {
                    r = serve => r,
                    _ = killed => Ok(()),
                };
                if let Err(e) = result {
                    let _ = failed_tx.send(Err(e.to_string()));
                }
            });
            rt.shutdown_background();
        });
        let ready = ready_rx.recv_timeout(Duration::from_secs(30)).map_err(|e| e.to_string())??;
        Ok(Node {
            url: format!("http://{}", ready.addr),
            setup_token: ready.setup_token,
            stop: Some(stop),
            kill: Some(kill),
            thread: Some(thread),
            _data: data,
        })
    }

    /// Ends the node abruptly: no goodbye to clients, the bus or the database.
    fn kill(mut self) {
        if let Some(k) = self.kill.take() {
            let _ = k.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Cluster {
    nats: Nats,
    db: TestDb,
    files: tempfile::TempDir,
    nodes: Vec<Option<Node>>,
    tweak: fn(&mut Config),
}

impl Cluster {
    async fn start(n: usize) -> Option<Cluster> {
        Cluster::start_with(n, |_| {}).await
    }

    /// A cluster whose nodes' configuration `tweak` adjusts.
    async fn start_with(n: usize, tweak: fn(&mut Config)) -> Option<Cluster> {
        let db = TestDb::postgres().await?;
        let nats = Nats::start()?;
        let files = tempfile::tempdir().unwrap();
        let mut c = Cluster { nats, db, files, nodes: Vec::new(), tweak };
        for _ in 0..n {
            c.add_node();
        }
        Some(c)
    }

    fn add_node(&mut self) -> usize {
        let node = Node::start(&self.db.url, &self.nats.url(), self.files.path(), self.tweak);
        self.nodes.push(Some(node));
        self.nodes.len() - 1
    }

    fn url(&self, i: usize) -> String {
        self.nodes[i].as_ref().expect("a live node").url.clone()
    }

    fn kill(&mut self, i: usize) {
        self.nodes[i].take().expect("a live node").kill();
    }

    /// Sets the organisation up through node `i`; returns the owner's client there.
    async fn owner(&self, i: usize) -> Api {
        // Each node issues a new link at start (replacing the previous one): the last is valid.
        let token = self.nodes.iter().flatten().rev().find_map(|n| n.setup_token.clone()).expect("a setup token");
        let r = Api::new(&self.url(i), Auth::None)
            .post(
                "/api/v1/setup",
                json!({"token": token, "username": "owner", "display_name": "Owner", "password": "owner-password", "mode": "bearer"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        Api::new(&self.url(i), Auth::Bearer(r.body["token"].as_str().unwrap().to_owned()))
    }

    /// Creates a member and signs them in on node `i`.
    async fn member(&self, owner: &Api, username: &str, i: usize) -> (String, Api) {
        let password = format!("{username}-password");
        let r = owner
            .post(
                "/api/v1/users",
                json!({"username": username, "display_name": username, "role": "member", "password": password}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.body["user"]["id"].as_str().unwrap().to_owned();
        (id, sign_in(&self.url(i), username, &password).await)
    }
}

async fn sign_in(url: &str, login: &str, password: &str) -> Api {
    let r = Api::new(url, Auth::None)
        .post("/api/v1/auth/sign-in", json!({"login": login, "password": password, "mode": "bearer"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    Api::new(url, Auth::Bearer(r.body["token"].as_str().unwrap().to_owned()))
}

/// The same person's client against another node.
fn on(api: &Api, url: &str) -> Api {
    Api::new(url, api.auth.clone())
}

async fn send(api: &Api, c: &str, body: &str) -> Value {
    let r = api.post(&format!("/api/v1/conversations/{c}/messages"), json!({"body": body})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

/// Sends with an idempotency key, trying each node in turn until one answers (a killed node
/// refuses connections; a retry elsewhere with the same key cannot send twice).
async fn send_anywhere(urls: &[String], token: &str, c: &str, body: &str) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let key = body.replace(' ', "-");
    let mut last = String::new();
    for attempt in 0..60 {
        let url = &urls[attempt % urls.len()];
        let r = http
            .post(format!("{url}/api/v1/conversations/{c}/messages"))
            .bearer_auth(token)
            .json(&json!({"body": body, "client_key": key}))
            .send()
            .await;
        match r {
            // 200: a retry of a send that was committed on a node that died before answering.
            Ok(r) if matches!(r.status().as_u16(), 200 | 201) => return,
            Ok(r) => last = format!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no node accepted {body}: {last}");
}

/// Message bodies of the `message.created` events among `events`, checking that each
/// conversation's sequence numbers only grow.
fn created(events: &[Value]) -> Vec<String> {
    let mut last_seq = std::collections::HashMap::new();
    let mut out = Vec::new();
    for e in events.iter().filter(|e| e["op"] == "event") {
        if let (Some(c), Some(seq)) = (e["conversation_id"].as_str(), e["seq"].as_i64()) {
            let prev = last_seq.insert(c.to_owned(), seq).unwrap_or(0);
            assert!(seq > prev, "conversation {c}: seq {seq} after {prev}");
        }
        if e["data"]["type"] == "message.created" {
            out.push(e["data"]["message"]["body"].as_str().unwrap().to_owned());
        }
    }
    out
}

/// A client that stays connected whatever happens to nodes: it reads events, and when its
/// connection ends it resumes from its last position on the next node in `urls` that
/// answers. Returns every event frame it saw once `want` messages matching `prefix` have
/// arrived (or after 60 s).
async fn follow(first: Ws, urls: Vec<String>, token: String, prefix: String, want: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut events = Vec::new();
    let mut pos = first.pos;
    let mut ws = Some(first.inner);
    let mut next_node = 0;
    let count = |events: &[Value]| created(events).iter().filter(|b| b.starts_with(&prefix)).count();
    while count(&events) < want && tokio::time::Instant::now() < deadline {
        let Some(mut socket) = ws.take() else {
            let url = &urls[next_node % urls.len()];
            next_node += 1;
            let hello = json!({"op": "hello", "token": token, "resume_from": pos});
            let Ok(Ok((mut s, _))) =
                tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(crate::ws::ws_url(url)))
                    .await
            else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            if s.send(Message::Text(hello.to_string().into())).await.is_err() {
                continue;
            }
            match crate::ws::next_json(&mut s, Duration::from_secs(5)).await {
                Some(ready) if ready["op"] == "ready" => {
                    assert_eq!(ready["resumed"], true, "resuming at {pos} on {url}: {ready}");
                    ws = Some(s);
                }
                _ => {}
            }
            continue;
        };
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["op"] == "event" {
                    let p = v["pos"].as_i64().unwrap();
                    assert!(p > pos, "event {p} after {pos}: repeated or out of order");
                    pos = p;
                    events.push(v);
                }
                ws = Some(socket);
            }
            Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) => {} // reconnect elsewhere
            Ok(Some(Ok(_))) => ws = Some(socket),
            Err(_) => break,
        }
    }
    events
}

/// Reads frames until one satisfies `want`, for at most `secs` seconds.
async fn wait_for(ws: &mut Ws, secs: u64, what: &str, want: impl Fn(&Value) -> bool) {
    ws.expect(secs, what, want).await;
}

/// Events until `n` messages starting with `prefix` have arrived (or 20 s have passed), then
/// until a short quiet, so that a late duplicate is seen too.
async fn drain_messages(ws: &mut Ws, prefix: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut events = Vec::new();
    while created(&events).iter().filter(|b| b.starts_with(prefix)).count() < n {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match ws.next(left).await {
            Some(v) if v["op"] == "event" => events.push(v),
            Some(_) => {}
            None => break,
        }
    }
    events.extend(ws.drain_events(Duration::from_millis(300)).await);
    events
}

fn assert_all_once(bodies: &[String], prefix: &str, n: usize) {
    let mine: Vec<&String> = bodies.iter().filter(|b| b.starts_with(prefix)).collect();
    let unique: HashSet<&&String> = mine.iter().collect();
    assert_eq!(unique.len(), mine.len(), "a message arrived twice");
    assert_eq!(mine.len(), n, "messages lost: got {} of {n}", mine.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_deliver_each_others_events_once_in_order_and_clients_resume_anywhere() {
    let Some(cluster) = Cluster::start(2).await else { return };
    let (a, b) = (cluster.url(0), cluster.url(1));
    let owner = cluster.owner(0).await;
    let (bob_id, bob) = cluster.member(&owner, "bob", 1).await;
    let c = channel(&owner, "private", "跨节点 Cross-node", &[&bob_id]).await;
    let mut owner_ws = Ws::connect(&a, owner.token(), None).await;
    let mut bob_ws = Ws::connect(&b, bob.token(), None).await;

    // One message each way.
    let m = send(&owner, &c, "from node A").await;
    let e = bob_ws.expect_event("message.created").await;
    assert_eq!((&e["data"]["message"]["id"], &e["seq"]), (&m["id"], &m["seq"]));
    send(&bob, &c, "from node B").await;
    assert_eq!(owner_ws.expect_event("message.created").await["data"]["message"]["body"], "from node A");
    assert_eq!(owner_ws.expect_event("message.created").await["data"]["message"]["body"], "from node B");

    // Both nodes writing at once: every client sees every event once, in position order
    // (`Ws::next` checks positions), and each conversation's sequence in order.
    let owner_on_a = owner.clone();
    let bob_on_b = bob.clone();
    let (c1, c2) = (c.clone(), c.clone());
    let burst_a = tokio::spawn(async move {
        for i in 0..40 {
            send(&owner_on_a, &c1, &format!("burst a{i}")).await;
        }
    });
    let burst_b = tokio::spawn(async move {
        for i in 0..40 {
            send(&bob_on_b, &c2, &format!("burst b{i}")).await;
        }
    });
    burst_a.await.unwrap();
    burst_b.await.unwrap();
    for ws in [&mut owner_ws, &mut bob_ws] {
        let got = created(&drain_messages(ws, "burst ", 80).await);
        assert_all_once(&got, "burst ", 80);
        let a_order: Vec<&String> = got.iter().filter(|b| b.starts_with("burst a")).collect();
        let expected: Vec<String> = (0..40).map(|i| format!("burst a{i}")).collect();
        assert_eq!(a_order, expected.iter().collect::<Vec<_>>(), "one sender's messages in sending order");
    }

    // Typing and presence cross nodes too.
    owner_ws.send(json!({"op": "presence_subscribe", "user_ids": [bob_id]})).await;
    wait_for(&mut owner_ws, 10, "bob online, seen from the other node", |f| {
        f["op"] == "presence" && f["user_id"] == bob_id.as_str() && f["status"] == "online"
    })
    .await;
    bob_ws.send(json!({"op": "typing", "conversation_id": c})).await;
    let t = owner_ws.expect_op("typing").await;
    assert_eq!((t["user_id"].as_str(), t["conversation_id"].as_str()), (Some(bob_id.as_str()), Some(c.as_str())));
    // Do-not-disturb is the person's: turned on from a device on node B, it is turned off
    // from a device on node A.
    let mut bob_phone = Ws::connect(&a, bob.token(), None).await;
    bob_ws.send(json!({"op": "presence", "status": "dnd"})).await;
    wait_for(&mut owner_ws, 10, "bob busy", |f| f["op"] == "presence" && f["status"] == "dnd").await;
    bob_phone.send(json!({"op": "presence", "status": "online"})).await;
    wait_for(&mut owner_ws, 10, "bob available again", |f| f["op"] == "presence" && f["status"] == "online").await;
    drop(bob_phone);

    // Bob leaves node B; what is sent meanwhile reaches him when he resumes on node A.
    let bob_pos = bob_ws.pos;
    drop(bob_ws);
    for i in 0..5 {
        send(&owner, &c, &format!("while away {i}")).await;
    }
    let mut bob_again = Ws::connect(&a, bob.token(), Some(bob_pos)).await;
    assert_eq!(bob_again.ready["resumed"], true);
    let got = created(&bob_again.drain_events(Duration::from_millis(500)).await);
    assert_eq!(got, (0..5).map(|i| format!("while away {i}")).collect::<Vec<_>>());

    // A file uploaded through node A (to the directory both nodes share) is read through B.
    let bytes = "共享文件 shared between nodes".repeat(100).into_bytes();
    let up = owner
        .send(
            owner
                .request(reqwest::Method::POST, &format!("/api/v1/conversations/{c}/files?name=notes.txt"))
                .body(bytes.clone()),
        )
        .await;
    assert_eq!(up.status, 201, "{}", up.body);
    let file = up.body["id"].as_str().unwrap().to_owned();
    let r = owner.post(&format!("/api/v1/conversations/{c}/messages"), json!({"body": "", "file_ids": [file]})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let res = bob.request(reqwest::Method::GET, &format!("/api/v1/files/{file}/content")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.bytes().await.unwrap().to_vec(), bytes);

    // Each node's search index follows every node's messages.
    send(&owner, &c, "季度预算评审 quarterly budget").await;
    let bob_on_b = on(&bob, &b);
    let mut found = false;
    for _ in 0..600 {
        let r = bob_on_b.get("/api/v1/search?q=%E9%A2%84%E7%AE%97").await; // 预算
        assert_eq!(r.status, 200, "{}", r.body);
        if r.body["items"].as_array().unwrap().len() == 1 {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(found, "a message sent through node A is searchable on node B");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn do_not_disturb_reaches_a_node_started_later() {
    let Some(mut cluster) = Cluster::start(1).await else { return };
    let a = cluster.url(0);
    let owner = cluster.owner(0).await;
    let (bob_id, bob) = cluster.member(&owner, "bob", 0).await;
    let follows_bob = json!({"op": "presence_subscribe", "user_ids": [bob_id]});
    let busy = |f: &Value| f["op"] == "presence" && f["user_id"] == bob_id.as_str() && f["status"] == "dnd";
    // Bob turns do-not-disturb on from a device on node A; then that device goes.
    let mut bob_on_a = Ws::connect(&a, bob.token(), None).await;
    let mut watcher_a = Ws::connect(&a, owner.token(), None).await;
    watcher_a.send(follows_bob.clone()).await;
    bob_on_a.send(json!({"op": "presence", "status": "dnd"})).await;
    wait_for(&mut watcher_a, 10, "bob busy on node A", busy).await;
    drop(bob_on_a);
    // A node started afterwards, where his next device lands, learns it from node A's
    // periodic repeats (node A has no device of his to report any more).
    let b = cluster.add_node();
    let b = cluster.url(b);
    let _bob_on_b = Ws::connect(&b, bob.token(), None).await;
    let mut watcher_b = Ws::connect(&b, owner.token(), None).await;
    watcher_b.send(follows_bob).await;
    wait_for(&mut watcher_b, 15, "bob busy, seen on the new node", busy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_on_one_node_ends_the_session_on_every_node() {
    let Some(cluster) = Cluster::start(3).await else { return };
    let owner = cluster.owner(0).await;
    let (_, bob) = cluster.member(&owner, "bob", 0).await;
    // The session is used (and cached) on every node, with a socket on two of them.
    for i in 0..3 {
        assert_eq!(on(&bob, &cluster.url(i)).get("/api/v1/me").await.status, 200);
    }
    let mut ws_b = Ws::connect(&cluster.url(1), bob.token(), None).await;
    let mut ws_c = Ws::connect(&cluster.url(2), bob.token(), None).await;
    assert_eq!(bob.post_empty("/api/v1/auth/sign-out").await.status, 204);
    for ws in [&mut ws_b, &mut ws_c] {
        assert!(matches!(ws.ended(Duration::from_secs(10)).await, crate::ws::Ended::Closed(Some(4003))));
    }
    // The revocation reached the other nodes' caches with the event that closed the sockets.
    for i in 1..3 {
        let r = on(&bob, &cluster.url(i)).get("/api/v1/me").await;
        assert_eq!((r.status, r.code()), (401, "unauthenticated"), "node {i}: {}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_stream_loses_nothing() {
    let Some(mut cluster) = Cluster::start(2).await else { return };
    let (a, b) = (cluster.url(0), cluster.url(1));
    let owner = cluster.owner(1).await;
    let (bob_id, bob) = cluster.member(&owner, "bob", 1).await;
    let (carol_id, carol) = cluster.member(&owner, "carol", 1).await;
    let c = channel(&owner, "private", "Kill test", &[&bob_id, &carol_id]).await;
    // Bob and Carol read through node A (the one to die), the owner through node B.
    let n = 160;
    let mut readers = Vec::new();
    for (api, start) in [(&bob, &a), (&carol, &a), (&owner, &b)] {
        let ws = Ws::connect(start, api.token(), None).await;
        let order = if start == &a { vec![a.clone(), b.clone()] } else { vec![b.clone(), a.clone()] };
        readers.push(tokio::spawn(follow(ws, order, api.token().to_owned(), "kill ".into(), n)));
    }
    // Two people send at once, alternately through both nodes; node A dies half way.
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut senders = Vec::new();
    for (token, who) in [(owner.token().to_owned(), "o"), (bob.token().to_owned(), "b")] {
        let (a, b, c, sent) = (a.clone(), b.clone(), c.clone(), sent.clone());
        senders.push(tokio::spawn(async move {
            for i in 0..n / 2 {
                let order = if i % 2 == 0 { [a.clone(), b.clone()] } else { [b.clone(), a.clone()] };
                send_anywhere(&order, &token, &c, &format!("kill {who}{i:03}")).await;
                sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    while sent.load(std::sync::atomic::Ordering::Relaxed) < n / 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::task::block_in_place(|| cluster.kill(0));
    for s in senders {
        s.await.unwrap();
    }
    for r in readers {
        let got = created(&r.await.unwrap());
        assert_all_once(&got, "kill ", n);
        for who in ["kill o", "kill b"] {
            let mine: Vec<&String> = got.iter().filter(|b| b.starts_with(who)).collect();
            assert!(mine.is_sorted(), "{who}: in sending order");
        }
    }
    assert!(cluster.nodes[0].is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_ride_out_a_bus_restart() {
    let Some(mut cluster) = Cluster::start(2).await else { return };
    let (a, b) = (cluster.url(0), cluster.url(1));
    let owner = cluster.owner(0).await;
    let (bob_id, bob) = cluster.member(&owner, "bob", 1).await;
    let c = channel(&owner, "private", "Bus test", &[&bob_id]).await;
    let mut owner_ws = Ws::connect(&a, owner.token(), None).await;
    let mut bob_ws = Ws::connect(&b, bob.token(), None).await;
    let bob_b = on(&bob, &b);

    send(&owner, &c, "bus 0 before").await;
    cluster.nats.stop();
    // While the bus is down, each node reads the others' events from the database.
    for i in 1..=10 {
        let api = if i % 2 == 0 { &owner } else { &bob_b };
        send(api, &c, &format!("bus {i} during")).await;
    }
    let mid_a = created(&drain_messages(&mut owner_ws, "bus ", 11).await);
    let mid_b = created(&drain_messages(&mut bob_ws, "bus ", 11).await);
    assert_all_once(&mid_a, "bus ", 11);
    assert_all_once(&mid_b, "bus ", 11);

    cluster.nats.run();
    for i in 11..=30 {
        let api = if i % 2 == 0 { &owner } else { &bob_b };
        send(api, &c, &format!("bus {i} after")).await;
    }
    let after_a = created(&drain_messages(&mut owner_ws, "bus ", 20).await);
    let after_b = created(&drain_messages(&mut bob_ws, "bus ", 20).await);
    assert_all_once(&after_a, "bus ", 20);
    assert_all_once(&after_b, "bus ", 20);

    // Once reconnected, cross-node signals flow again (typing is never read from the store).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    'typing: loop {
        assert!(tokio::time::Instant::now() < deadline, "typing never crossed the restarted bus");
        bob_ws.send(json!({"op": "typing", "conversation_id": c})).await;
        while let Some(f) = owner_ws.next(Duration::from_millis(2500)).await {
            if f["op"] == "typing" {
                break 'typing;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_would_not_work_with_the_others_refuses_to_start() {
    let Some(mut cluster) = Cluster::start(1).await else { return };
    let files = cluster.files.path().display().to_string();
    let no_bus = Node::try_start(&cluster.db.url, "", files.clone()).err().expect("refused");
    assert!(no_bus.contains("this node has no event bus") && no_bus.contains("bus = nats://"), "{no_bus}");
    let own_files = Node::try_start(&cluster.db.url, &cluster.nats.url(), String::new()).err().expect("refused");
    assert!(own_files.contains("file_store"), "{own_files}");
    // A live node of another version (as an older build would have left its row).
    let mut config = qiao::Config::defaults();
    config.database = qiao::config::Secret(cluster.db.url.clone());
    let store = qiao_store::Store::open(&qiao::store_config(&config), std::sync::Arc::new(|_| {})).await.unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let other = qiao_store::nodes::Node {
        id: "older".into(),
        host: "elsewhere".into(),
        data_dir: "/srv/qiao".into(),
        bus: true,
        shared_files: true,
        version: "0.0.1+schema7".into(),
        started_at: now,
        seen_at: now,
    };
    let o = other.clone();
    store
        .write(move |tx| {
            let o = o.clone();
            Box::pin(async move { qiao_store::nodes::register(tx, &o).await })
        })
        .await
        .unwrap();
    let mixed = Node::try_start(&cluster.db.url, &cluster.nats.url(), files.clone()).err().expect("refused");
    assert!(mixed.contains("runs Qiao 0.0.1+schema7") && mixed.contains("same version"), "{mixed}");
    store.write(|tx| Box::pin(async move { qiao_store::nodes::remove(tx, "older", 0).await })).await.unwrap();
    store.close().await;
    // A correctly configured node joins; nodes that stop leave the registry at once, after
    // which a single node without a bus may use the database.
    let second = Node::try_start(&cluster.db.url, &cluster.nats.url(), files.clone()).expect("joins");
    tokio::task::block_in_place(|| {
        drop(second);
        drop(cluster.nodes[0].take());
    });
    let alone = Node::try_start(&cluster.db.url, "", String::new()).expect("a single node starts");
    tokio::task::block_in_place(|| drop(alone));
    // A single node killed a moment ago in another container (another host name, the same
    // data directory) left a fresh row: the restarted node waits for it to go stale.
    let data = tempfile::tempdir().unwrap();
    let store = qiao_store::Store::open(&qiao::store_config(&config), std::sync::Arc::new(|_| {})).await.unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let killed = qiao_store::nodes::Node {
        id: "killed".into(),
        host: "old-container".into(),
        data_dir: data.path().display().to_string(),
        bus: false,
        shared_files: false,
        version: format!("{}+schema{}", env!("CARGO_PKG_VERSION"), qiao_store::MIGRATION_VERSIONS.last().unwrap()),
        started_at: now - 60_000,
        seen_at: now - 17_000,
    };
    store
        .write(move |tx| {
            let k = killed.clone();
            Box::pin(async move { qiao_store::nodes::register(tx, &k).await })
        })
        .await
        .unwrap();
    store.close().await;
    let restarted =
        tokio::task::block_in_place(|| Node::try_start_in(&cluster.db.url, "", String::new(), data, |_| {}))
            .expect("starts once the killed run's row is stale");
    tokio::task::block_in_place(|| drop(restarted));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_on_a_node_that_died_go_offline_after_a_timeout() {
    let tweak: fn(&mut Config) = |c| {
        c.presence_node_timeout_secs = 2;
        c.presence_offline_grace_secs = 1;
    };
    let Some(mut cluster) = Cluster::start_with(2, tweak).await else { return };
    let owner = cluster.owner(0).await;
    let (bob_id, bob) = cluster.member(&owner, "bob", 1).await;
    let mut owner_ws = Ws::connect(&cluster.url(0), owner.token(), None).await;
    let _bob_ws = Ws::connect(&cluster.url(1), bob.token(), None).await;
    owner_ws.send(json!({"op": "presence_subscribe", "user_ids": [bob_id]})).await;
    let status_of_bob =
        |f: &Value| (f["op"] == "presence" && f["user_id"] == bob_id.as_str()).then(|| f["status"].clone());
    wait_for(&mut owner_ws, 10, "bob online, seen from node A", |f| status_of_bob(f) == Some(json!("online"))).await;
    // Longer than the node timeout: node B's heartbeats keep Bob online.
    while let Some(f) = owner_ws.next(Duration::from_secs(4)).await {
        assert_ne!(status_of_bob(&f), Some(json!("offline")), "a live node's people stay online");
    }
    // Node B dies without a word; after the timeout and the grace period Bob is offline.
    tokio::task::block_in_place(|| cluster.kill(1));
    wait_for(&mut owner_ws, 15, "bob offline once node B is presumed dead", |f| {
        status_of_bob(f) == Some(json!("offline"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_lockout_holds_on_every_node() {
    let Some(cluster) = Cluster::start(2).await else { return };
    let owner = cluster.owner(0).await;
    cluster.member(&owner, "bob", 0).await;
    let sign_in = |node: usize, password: &str| {
        let api = Api::new(&cluster.url(node), Auth::None);
        let body = json!({"login": "bob", "password": password, "mode": "bearer"});
        async move { api.post("/api/v1/auth/sign-in", body).await }
    };
    // Five wrong passwords through node A (the default limit per account)...
    for _ in 0..5 {
        assert_eq!(sign_in(0, "not-bobs-password").await.code(), "invalid_credentials");
    }
    // ...lock the account on node B too, once the failures have travelled there (the bus
    // is asynchronous: a right password in the first milliseconds could still get in).
    // Fewer than five wrong ones on node B, so only node A's failures can lock it there.
    // Each probe waits longer (4 s in all: this machine may be busy with other tests).
    let mut last = String::new();
    for wait in [100, 400, 1000, 2500] {
        tokio::time::sleep(Duration::from_millis(wait)).await;
        last = sign_in(1, "not-bobs-password").await.code().to_owned();
        if last == "rate_limited" {
            break;
        }
    }
    assert_eq!(last, "rate_limited", "node B did not hear of node A's failures");
    // Even with the right password.
    let r = sign_in(1, "bob-password").await;
    assert_ne!(r.status, 200, "node B let bob in during the lockout");
    assert_eq!(r.code(), "rate_limited");
}
