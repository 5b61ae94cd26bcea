//! A real `qiao` process killed outright (SIGKILL) while people are sending, then started
//! again on the same data directory: every acknowledged message is there exactly once and in
//! order, retries of the unanswered sends with their idempotency keys commit each once, a
//! client resuming from before the crash gets every event once, and search catches up.
//!
//! A killed process leaves the operating system's page cache intact, so this cannot catch a
//! missing sync (that would take cutting the machine's power); it catches answers given
//! before the commit, a log or head out of step with the messages, and recovery bugs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::conversations::channel;
use crate::harness::{Api, Auth};
use crate::ws::Ws;

/// Senders working at once, and the most each sends (the kill comes long before).
const SENDERS: usize = 8;
const PER_SENDER_MAX: usize = 3_000;
/// Acknowledged sends before the kill.
const ACKED_BEFORE_KILL: usize = 300;

struct Server {
    child: Child,
    url: String,
    setup_token: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `qiao serve` on `dir` and waits for its ready line (bounded), on another free port
/// if the one picked was taken in the meantime.
fn spawn_qiao(dir: &Path) -> Server {
    for _ in 0..5 {
        if let Some(server) = try_spawn(dir, free_port()) {
            return server;
        }
    }
    panic!("qiao did not start");
}

/// `None` if the process ended before it was ready (its port was taken, say).
fn try_spawn(dir: &Path, port: u16) -> Option<Server> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_qiao"))
        .arg("serve")
        .env("QIAO_DATA_DIR", dir)
        .env("QIAO_LISTEN", format!("127.0.0.1:{port}"))
        .env("QIAO_PASSWORD_MEMORY_KIB", "64")
        .env("QIAO_PASSWORD_ITERATIONS", "1")
        .env("QIAO_MESSAGE_RATE_PER_SECOND", "100000")
        .env("QIAO_MESSAGE_BURST", "100000")
        .env("QIAO_LOG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start qiao");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    // Keeps draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The setup link, when there is one, follows the ready line.
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.contains(" is ready at ") => break,
            Ok(_) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let _ = child.wait();
                return None;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("qiao did not report ready in time"),
        }
    }
    let mut setup_token = None;
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
        if let Some((_, token)) = line.split_once("setup#token=") {
            setup_token = Some(token.trim().to_owned());
            break;
        }
    }
    Some(Server { child, url: format!("http://127.0.0.1:{port}"), setup_token })
}

/// One person's sends until the first one that gets no answer: (acknowledged key → seq, the
/// key left unanswered).
async fn send_until_gone(
    url: String,
    token: String,
    c: String,
    sender: usize,
    acked: Arc<AtomicUsize>,
) -> (BTreeMap<String, i64>, Option<String>) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let mut got = BTreeMap::new();
    for i in 0..PER_SENDER_MAX {
        let key = key(sender, i);
        let r = http
            .post(format!("{url}/api/v1/conversations/{c}/messages"))
            .bearer_auth(&token)
            .json(&json!({"body": body(&key), "client_key": key}))
            .send()
            .await;
        let Ok(r) = r else { return (got, Some(key)) };
        if r.status().as_u16() != 201 {
            return (got, Some(key));
        }
        let Ok(m) = r.json::<Value>().await else { return (got, Some(key)) };
        got.insert(key, m["seq"].as_i64().unwrap());
        acked.fetch_add(1, Ordering::Relaxed);
    }
    (got, None)
}

async fn owner_id(owner: &Api) -> String {
    owner.get("/api/v1/me").await.body["user"]["id"].as_str().unwrap().to_owned()
}

fn key(sender: usize, i: usize) -> String {
    format!("crash{sender}x{i}")
}

fn body(key: &str) -> String {
    format!("{key} 断电之前发出的消息")
}

async fn history(api: &Api, c: &str, start: i64) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let mut after = start;
    for _ in 0..1_000 {
        let page = api.get(&format!("/api/v1/conversations/{c}/messages?after={after}&limit=100")).await;
        assert_eq!(page.status, 200, "{}", page.body);
        for m in page.body["items"].as_array().unwrap() {
            out.push((m["seq"].as_i64().unwrap(), m["client_key"].as_str().unwrap_or_default().to_owned()));
        }
        match out.last() {
            Some((seq, _)) if page.body["more_after"] == true => after = *seq,
            _ => return out,
        }
    }
    panic!("history did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = spawn_qiao(dir.path());
    let token = srv.setup_token.clone().expect("a fresh server prints its setup link");
    let anon = Api::new(&srv.url, Auth::None);
    let r = anon
        .post(
            "/api/v1/setup",
            json!({"token": token, "username": "owner", "display_name": "Owner", "password": "owner-password", "mode": "bearer"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let owner = Api::new(&srv.url, Auth::Bearer(r.body["token"].as_str().unwrap().to_owned()));
    let c = channel(&owner, "public", "Crash 断电", &[]).await;
    // Creating a channel may number something already (its first sequence numbers).
    let start =
        owner.get(&format!("/api/v1/conversations/{c}")).await.body["conversation"]["last_seq"].as_i64().unwrap();
    let mut device = Ws::connect(&srv.url, owner.token(), None).await;
    let before = device.pos;
    // Do-not-disturb, turned on before the sends: it is stored in the background as soon as
    // it is set, long before hundreds of sends behind it are acknowledged.
    device.send(json!({"op": "presence", "status": "dnd"})).await;
    let me = owner_id(&owner).await;
    device.send(json!({"op": "presence_subscribe", "user_ids": [&me]})).await;
    device.expect_presence(&me, "dnd").await;

    let acked = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| tokio::spawn(send_until_gone(srv.url.clone(), owner.token().to_owned(), c.clone(), s, acked.clone())))
        .collect();
    for _ in 0..600 {
        if acked.load(Ordering::Relaxed) >= ACKED_BEFORE_KILL {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(acked.load(Ordering::Relaxed) >= ACKED_BEFORE_KILL, "the senders did not get going");
    // SIGKILL: no shutdown, no flush, sends in flight.
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
    let mut confirmed: BTreeMap<String, i64> = BTreeMap::new();
    let mut unanswered = Vec::new();
    for s in senders {
        let (got, left) = s.await.unwrap();
        confirmed.extend(got);
        unanswered.extend(left);
    }
    assert_eq!(unanswered.len(), SENDERS, "every sender was still sending when the server died");

    // A new port: the old one may have been taken since.
    let srv = spawn_qiao(dir.path());
    assert!(srv.setup_token.is_none(), "the owner survived");
    let owner = Api::new(&srv.url, owner.auth.clone());
    // Unanswered sends are retried with their keys: each commits once (201 if it had not
    // been committed, 200 if it had been committed but the answer was lost).
    let mut committed_unanswered = 0;
    for key in &unanswered {
        let r = owner
            .post(&format!("/api/v1/conversations/{c}/messages"), json!({"body": body(key), "client_key": key}))
            .await;
        assert!(matches!(r.status, 200 | 201), "{key}: {}", r.body);
        committed_unanswered += usize::from(r.status == 200);
        confirmed.insert(key.clone(), r.body["seq"].as_i64().unwrap());
    }
    eprintln!("{committed_unanswered} of {} unanswered sends had been committed before the kill", unanswered.len());
    // Retrying acknowledged ones changes nothing.
    for (key, seq) in confirmed.iter().take(5) {
        let r = owner
            .post(&format!("/api/v1/conversations/{c}/messages"), json!({"body": body(key), "client_key": key}))
            .await;
        assert_eq!(r.status, 200, "{key}: {}", r.body);
        assert_eq!(r.body["seq"].as_i64(), Some(*seq));
    }

    // The history holds exactly what was confirmed, each once, numbered without gaps.
    let stored = history(&owner, &c, start).await;
    let numbered = (start + 1..=start + stored.len() as i64).collect::<Vec<_>>();
    assert_eq!(stored.iter().map(|(s, _)| *s).collect::<Vec<_>>(), numbered);
    let by_key: HashMap<&str, i64> = stored.iter().map(|(s, k)| (k.as_str(), *s)).collect();
    assert_eq!(by_key.len(), stored.len(), "no message twice");
    for (key, seq) in &confirmed {
        assert_eq!(by_key.get(key.as_str()), Some(seq), "{key} as acknowledged");
    }
    // Anything else stored was committed but never answered: only the unanswered sends,
    // which were retried, so nothing else.
    assert_eq!(stored.len(), confirmed.len());

    // A client that was connected before the crash resumes: each message once, in order.
    let mut ws = Ws::connect(&srv.url, owner.token(), Some(before)).await;
    assert_eq!(ws.ready["resumed"], true);
    // Do-not-disturb outlived the kill.
    let mut other = Ws::connect(&srv.url, owner.token(), None).await;
    other.send(json!({"op": "presence_subscribe", "user_ids": [owner_id(&owner).await]})).await;
    assert_eq!(other.expect_op("presence").await["status"], "dnd");
    let mut seen = Vec::new();
    let mut positions = HashSet::new();
    for _ in 0..10_000 {
        if seen.len() == stored.len() {
            break;
        }
        let Some(e) = ws.next(Duration::from_secs(5)).await else { break };
        if e["op"] == "event" && e["data"]["type"] == "message.created" {
            assert!(positions.insert(e["pos"].as_i64().unwrap()), "an event twice: {e}");
            seen.push(e["seq"].as_i64().unwrap());
        }
    }
    assert_eq!(seen, numbered, "every message once, in order");

    // Search caught up with what was committed just before the kill, and after.
    let newest = confirmed.iter().max_by_key(|(_, seq)| **seq).map(|(k, _)| k.clone()).unwrap();
    for key in [key(0, 0), newest] {
        let mut hits = 0;
        for _ in 0..600 {
            let r = owner.get(&format!("/api/v1/search?q={key}")).await;
            assert_eq!(r.status, 200, "{}", r.body);
            hits = r.body["items"].as_array().unwrap().len();
            if hits == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(hits, 1, "search finds {key}");
    }
}
