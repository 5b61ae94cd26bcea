//! The realtime gateway with real WebSocket clients.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::conversations::channel;
use crate::harness::{Api, Auth, TestServer, assert_error};
use crate::ws::{Ended, RawWs, Ws, ended, next_json};

const QUIET: Duration = Duration::from_millis(300);

async fn send(api: &Api, c: &str, body: &str) -> Value {
    let r = api.post(&format!("/api/v1/conversations/{c}/messages"), json!({"body": body})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

fn bodies(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["data"]["type"] == "message.created")
        .map(|e| e["data"]["message"]["body"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn messages_reach_every_member_live_and_nobody_else() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let (bob_id, bob) = owner.create_user(&srv, "bob", "member", None).await;
    let (eve_id, eve) = owner.create_user(&srv, "eve", "member", None).await;
    let c = channel(&owner, "private", "Team", &[&bob_id]).await;
    let mut owner_ws = Ws::connect(&srv.url, owner.token(), None).await;
    let mut bob_ws = Ws::connect(&srv.url, bob.token(), None).await;
    let mut eve_ws = Ws::connect(&srv.url, eve.token(), None).await;
    assert_eq!(owner_ws.ready["protocol"], 1);
    assert_eq!(owner_ws.ready["resumed"], false);

    let m = send(&bob, &c, "实时 hello").await;
    for ws in [&mut owner_ws, &mut bob_ws] {
        let e = ws.expect_event("message.created").await;
        assert_eq!(e["data"]["message"]["id"], m["id"]);
        assert_eq!(e["conversation_id"], c.as_str());
        assert_eq!(e["seq"], m["seq"]);
    }
    assert!(bodies(&eve_ws.drain_events(QUIET).await).is_empty(), "non-members receive nothing");

    // Edits, reactions and deletes follow.
    let mid = m["id"].as_str().unwrap();
    owner.post(&format!("/api/v1/messages/{mid}/reactions"), json!({"emoji": "👍"})).await;
    bob.patch(&format!("/api/v1/messages/{mid}"), json!({"body": "实时 hello!"})).await;
    bob.delete(&format!("/api/v1/messages/{mid}")).await;
    let kinds: Vec<String> =
        owner_ws.drain_events(QUIET).await.iter().map(|e| e["data"]["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds, vec!["reaction.added", "message.updated", "message.deleted"]);

    // Eve added: her first event carries the conversation as of its own position, so what
    // follows is gap-free from there (for her and for those already in).
    let r = owner.post(&format!("/api/v1/conversations/{c}/members"), json!({"user_ids": [eve_id]})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    for ws in [&mut eve_ws, &mut owner_ws] {
        let e = ws.expect_event("members.added").await;
        assert_eq!(e["data"]["conversation"]["last_seq"], e["seq"], "{e}");
    }
}

#[tokio::test]
async fn a_reconnecting_client_gets_what_it_missed_exactly_once_in_order() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let (bob_id, bob) = owner.create_user(&srv, "bob", "member", None).await;
    let c = channel(&owner, "public", "General", &[&bob_id]).await;
    let mut ws = Ws::connect(&srv.url, bob.token(), None).await;
    send(&owner, &c, "before").await;
    ws.expect_event("message.created").await;
    let last = ws.pos;
    drop(ws);

    for i in 0..5 {
        send(&owner, &c, &format!("while away {i}")).await;
    }
    let mut back = Ws::connect(&srv.url, bob.token(), Some(last)).await;
    assert_eq!(back.ready["resumed"], true);
    // Live messages sent right after reconnecting come after the missed ones, without gaps.
    send(&owner, &c, "after").await;
    let events = back.drain_events(QUIET).await;
    assert_eq!(
        bodies(&events),
        vec!["while away 0", "while away 1", "while away 2", "while away 3", "while away 4", "after"]
    );
    let positions: Vec<i64> = events.iter().map(|e| e["pos"].as_i64().unwrap()).collect();
    assert_eq!(positions.iter().collect::<HashSet<_>>().len(), positions.len(), "no duplicates");
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "conversation order without gaps: {seqs:?}");
    // Resuming from the current position sends nothing.
    let mut again = Ws::connect(&srv.url, bob.token(), Some(back.pos)).await;
    assert!(again.drain_events(QUIET).await.is_empty());
}

/// A counter's value in a metrics text (`series`: its name with any labels), 0 if absent.
fn counter(metrics: &str, series: &str) -> u64 {
    let prefix = format!("{series} ");
    metrics.lines().find_map(|l| l.strip_prefix(&prefix)).map_or(0, |v| v.trim().parse().unwrap())
}

fn resumes_from(metrics: &str, source: &str) -> u64 {
    counter(metrics, &format!("qiao_ws_resumes_total{{from=\"{source}\"}}"))
}

/// How many connections the server at `url` has cut off as slow consumers.
async fn slow_consumers(url: &str) -> u64 {
    counter(&metrics_at(url).await, "qiao_ws_slow_consumers_total")
}

async fn metrics(srv: &TestServer) -> String {
    metrics_at(&srv.url).await
}

async fn metrics_at(url: &str) -> String {
    reqwest::get(format!("{url}/metrics")).await.unwrap().text().await.unwrap()
}

/// Resumes each person from their position and returns the events each was sent, checking
/// (by the server's metrics) that the resumes were answered `from` memory or the store.
async fn resume_each(srv: &TestServer, people: [(&Api, i64); 2], from: &str) -> Vec<Vec<Value>> {
    let before = resumes_from(&metrics(srv).await, from);
    let mut sent = Vec::new();
    for (api, pos) in people {
        let mut ws = Ws::connect(&srv.url, api.token(), Some(pos)).await;
        assert_eq!(ws.ready["resumed"], true);
        sent.push(ws.drain_events(QUIET).await);
    }
    assert!(resumes_from(&metrics(srv).await, from) >= before + 2, "answered from {from}");
    sent
}

/// A resume is answered from the recent events kept in memory while they reach back far
/// enough, and from the event log otherwise (after a restart, say): both give the same frames,
/// with the same rule of who receives what (conversations the person is in now, their own
/// events, organisation-wide ones; staff-only ones not for guests).
#[tokio::test]
async fn resuming_from_memory_and_from_the_log_send_the_same_frames() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let (bob_id, bob) = owner.create_user(&srv, "bob", "member", None).await;
    let (guest_id, guest) = owner.create_user(&srv, "partner", "guest", None).await;
    let shared = channel(&owner, "private", "Shared", &[&bob_id, &guest_id]).await;
    let leaving = channel(&owner, "private", "Leaving", &[&bob_id]).await;
    let elsewhere = channel(&owner, "private", "Elsewhere", &[]).await;
    let joining = channel(&owner, "private", "Joining", &[]).await;
    send(&owner, &joining, "before bob joined").await;
    let bob_ws = Ws::connect(&srv.url, bob.token(), None).await;
    let guest_ws = Ws::connect(&srv.url, guest.token(), None).await;
    let (bob_from, guest_from) = (bob_ws.pos, guest_ws.pos);
    drop((bob_ws, guest_ws));

    // While both are away: every kind of audience.
    let m = send(&owner, &shared, "共享 one").await;
    send(&owner, &leaving, "in a channel bob leaves").await;
    send(&owner, &elsewhere, "never for bob").await;
    let mid = m["id"].as_str().unwrap();
    owner.post(&format!("/api/v1/messages/{mid}/reactions"), json!({"emoji": "👍"})).await;
    owner.patch(&format!("/api/v1/messages/{mid}"), json!({"body": "共享 one, edited"})).await;
    // Bob made an admin of a channel he is in: a members.added too, but no join (what came
    // before it there is his to replay).
    let r = owner
        .post(&format!("/api/v1/conversations/{shared}/members"), json!({"user_ids": [bob_id], "role": "admin"}))
        .await;
    assert!(r.status < 300, "{}", r.body);
    assert_eq!(owner.delete(&format!("/api/v1/conversations/{leaving}/members/{bob_id}")).await.status, 204);
    // Said and deleted before bob joins: his resume must not replay it (history shows only a
    // tombstone).
    let said = send(&owner, &joining, "said before bob joined, then deleted").await;
    assert_eq!(owner.delete(&format!("/api/v1/messages/{}", said["id"].as_str().unwrap())).await.status, 204);
    let r = owner.post(&format!("/api/v1/conversations/{joining}/members"), json!({"user_ids": [bob_id]})).await;
    assert!(r.status < 300, "{}", r.body);
    send(&owner, &joining, "after bob joined").await;
    assert_eq!(bob.post(&format!("/api/v1/conversations/{shared}/read"), json!({})).await.status, 200);
    owner.create_department("研发部", None).await;
    owner.create_user(&srv, "carol", "member", None).await;
    send(&guest, &shared, "from the guest").await;

    let people = [(&bob, bob_from), (&guest, guest_from)];
    let from_memory = resume_each(&srv, people, "memory").await;
    // After a restart nothing is in memory: the same resumes read the log.
    let srv = TestServer::start_with(srv.stop().await, |_| {}).await;
    let from_log = resume_each(&srv, people, "store").await;
    assert_eq!(from_memory, from_log);

    let (bob_events, guest_events) = (&from_memory[0], &from_memory[1]);
    assert_eq!(bodies(bob_events), vec!["共享 one", "after bob joined", "from the guest"]);
    assert_eq!(bodies(guest_events), vec!["共享 one", "from the guest"]);
    let kinds =
        |events: &[Value]| events.iter().map(|e| e["data"]["type"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    for kind in ["reaction.added", "message.updated", "read.updated", "department.created", "user.created"] {
        assert!(kinds(bob_events).iter().any(|k| k == kind), "bob gets {kind}: {:?}", kinds(bob_events));
    }
    assert!(!kinds(guest_events).iter().any(|k| k == "read.updated"), "another person's read position");
    let joining_kinds: Vec<&str> = bob_events
        .iter()
        .filter(|e| e["conversation_id"] == joining.as_str())
        .map(|e| e["data"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(joining_kinds, vec!["members.added", "message.created"], "from his join on");
    let positions: Vec<i64> = bob_events.iter().map(|e| e["pos"].as_i64().unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "in order, once: {positions:?}");
}

#[tokio::test]
async fn a_client_too_far_behind_is_told_to_resync() {
    let srv = TestServer::start_with(qiao_store::testing::TestDb::sqlite(), |c| c.realtime_resume_window = 3).await;
    let owner = srv.owner().await;
    let c = channel(&owner, "public", "Busy", &[]).await;
    let ws = Ws::connect(&srv.url, owner.token(), None).await;
    let head = ws.pos;
    drop(ws);
    for i in 0..6 {
        send(&owner, &c, &format!("m{i}")).await;
    }
    let mut back = Ws::connect(&srv.url, owner.token(), Some(head)).await;
    assert_eq!(back.ready["resumed"], false);
    let resync = back.expect_op("resync").await;
    assert_eq!(resync["reason"], "too_far_behind");
    assert_eq!(resync["head"], back.ready["head"]);
    // Live events still follow.
    send(&owner, &c, "live").await;
    assert_eq!(bodies(&back.drain_events(QUIET).await), vec!["live"]);
    // A position from the future (a server restored from a backup) or a negative one is not
    // trusted either, and the reason says so.
    for odd in [i64::MAX / 2, head + 1_000, -1] {
        let mut odd = Ws::connect(&srv.url, owner.token(), Some(odd)).await;
        assert_eq!(odd.ready["resumed"], false);
        assert_eq!(odd.expect_op("resync").await["reason"], "unknown_position");
    }
}

#[tokio::test]
async fn a_catch_up_over_the_byte_budget_is_told_to_resync() {
    let srv = TestServer::start_with(qiao_store::testing::TestDb::sqlite(), |c| c.realtime_resume_max_kib = 4).await;
    let owner = srv.owner().await;
    let c = channel(&owner, "public", "Wordy", &[]).await;
    let head = Ws::connect(&srv.url, owner.token(), None).await.pos;
    let long = "长".repeat(500); // 1,500 bytes of text per frame
    send(&owner, &c, &long).await;
    // One such message fits in 4 KiB…
    let mut back = Ws::connect(&srv.url, owner.token(), Some(head)).await;
    assert_eq!(back.ready["resumed"], true);
    assert_eq!(bodies(&back.drain_events(QUIET).await).len(), 1);
    // …three do not, whatever the resume window says.
    send(&owner, &c, &long).await;
    send(&owner, &c, &long).await;
    let mut behind = Ws::connect(&srv.url, owner.token(), Some(head)).await;
    assert_eq!(behind.ready["resumed"], false);
    assert_eq!(behind.expect_op("resync").await["reason"], "too_far_behind");
}

#[tokio::test]
async fn a_position_older_than_the_log_keeps_is_told_to_resync() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let c = channel(&owner, "public", "Long ago", &[]).await;
    let head = Ws::connect(&srv.url, owner.token(), None).await.pos;
    send(&owner, &c, "before the prune").await;
    // Housekeeping eight days later prunes the log (kept seven days by default).
    let db = srv.stop().await;
    let (store, services) = qiao::open_services(&crate::harness::test_config(&db)).await.unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!(services.sweep_at(now + 8 * 24 * 3_600_000).await.unwrap().events > 0);
    store.close().await;
    drop(services);
    let srv = TestServer::start_with(db, |_| {}).await;
    let owner = srv.sign_in("owner", "owner-password").await;
    let mut back = Ws::connect(&srv.url, owner.token(), Some(head)).await;
    assert_eq!(back.ready["resumed"], false);
    assert_eq!(back.expect_op("resync").await["reason"], "expired");
}

/// Folds events into what a client would show: message id → latest body (None if deleted).
fn fold(events: &[Value]) -> BTreeMap<String, Option<String>> {
    let mut state = BTreeMap::new();
    for e in events {
        let d = &e["data"];
        match d["type"].as_str().unwrap() {
            "message.created" | "message.updated" => {
                state.insert(
                    d["message"]["id"].as_str().unwrap().to_owned(),
                    Some(d["message"]["body"].as_str().unwrap().to_owned()),
                );
            }
            "message.deleted" => {
                state.insert(d["message_id"].as_str().unwrap().to_owned(), None);
            }
            _ => {}
        }
    }
    state
}

#[tokio::test]
async fn two_devices_converge_and_read_positions_follow_the_person() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let (bob_id, laptop) = owner.create_user(&srv, "bob", "member", None).await;
    let phone = srv.sign_in("bob", "bob-password").await;
    let c = channel(&owner, "public", "Sync", &[&bob_id]).await;
    let mut laptop_ws = Ws::connect(&srv.url, laptop.token(), None).await;
    let mut phone_ws = Ws::connect(&srv.url, phone.token(), None).await;
    let start = phone_ws.pos;
    let mut phone_events = phone_ws.drain_events(QUIET).await;
    drop(phone_ws);

    // The phone is offline while things happen.
    let a = send(&owner, &c, "one").await;
    let b = send(&laptop, &c, "two").await;
    owner.patch(&format!("/api/v1/messages/{}", a["id"].as_str().unwrap()), json!({"body": "one (edited)"})).await;
    laptop.delete(&format!("/api/v1/messages/{}", b["id"].as_str().unwrap())).await;
    send(&owner, &c, "three").await;
    let laptop_events = laptop_ws.drain_events(QUIET).await;

    let mut phone_ws = Ws::connect(&srv.url, phone.token(), Some(start)).await;
    phone_events.extend(phone_ws.drain_events(QUIET).await);
    assert_eq!(fold(&laptop_events), fold(&phone_events));
    assert_eq!(fold(&phone_events).values().flatten().cloned().collect::<Vec<_>>(), vec!["one (edited)", "three"]);

    // Reading on the laptop clears the badge on the phone.
    let r = laptop.post(&format!("/api/v1/conversations/{c}/read"), json!({})).await;
    let read = phone_ws.expect_event("read.updated").await;
    assert_eq!(read["data"]["conversation_id"], c.as_str());
    assert_eq!(read["data"]["read_seq"], r.body["read_seq"]);
    let _ = laptop_ws.expect_event("read.updated").await;
}

#[tokio::test]
async fn drafts_follow_the_person_to_every_device() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let (bob_id, laptop) = owner.create_user(&srv, "bob", "member", None).await;
    let phone = srv.sign_in("bob", "bob-password").await;
    let c = channel(&owner, "private", "Drafts 草稿", &[&bob_id]).await;
    let secret = channel(&owner, "private", "Not Bob's", &[]).await;
    let mut owner_ws = Ws::connect(&srv.url, owner.token(), None).await;
    let mut phone_ws = Ws::connect(&srv.url, phone.token(), None).await;
    let path = format!("/api/v1/conversations/{c}/draft");

    // Written on the laptop, shown on the phone; nobody else hears of it.
    let r = laptop.put(&path, json!({"body": "季度报告写到一半\r\n"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["body"], "季度报告写到一半\n");
    let e = phone_ws.expect_event("draft.updated").await;
    assert_eq!(
        (&e["data"]["draft"]["conversation_id"], &e["data"]["draft"]["body"]),
        (&json!(c), &json!("季度报告写到一半\n"))
    );
    assert!(e["data"]["draft"].get("thread_root_id").is_none());
    // The same text again changes nothing.
    assert_eq!(laptop.put(&path, json!({"body": "季度报告写到一半\n"})).await.status, 200);
    assert!(phone_ws.drain_events(QUIET).await.is_empty());
    assert!(owner_ws.drain_events(QUIET).await.iter().all(|e| e["data"]["type"] != "draft.updated"));

    // A reply's draft is kept apart, under its thread.
    let root = send(&owner, &c, "问题").await["id"].as_str().unwrap().to_owned();
    let reply = owner
        .post(&format!("/api/v1/conversations/{c}/messages"), json!({"body": "回答", "thread_root_id": root}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = phone.put(&path, json!({"body": "I think", "thread_root_id": root})).await;
    assert_eq!((r.status, &r.body["thread_root_id"]), (200, &json!(root)), "{}", r.body);
    for bad in [json!({"body": "x", "thread_root_id": reply}), json!({"body": "x", "thread_root_id": secret})] {
        let r = phone.put(&path, bad).await;
        assert_eq!(
            (r.status, r.code(), &r.body["field"]),
            (422, "invalid_input", &json!("thread_root_id")),
            "{}",
            r.body
        );
    }
    assert_error(&phone.put(&path, json!({"body": "bell\u{7}"})).await, 422, "invalid_input");
    assert_error(
        &phone.put(&format!("/api/v1/conversations/{secret}/draft"), json!({"body": "x"})).await,
        404,
        "not_found",
    );
    let listed = laptop.get("/api/v1/me/drafts").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let bodies: Vec<&str> =
        listed.body["items"].as_array().unwrap().iter().map(|d| d["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, vec!["I think", "季度报告写到一半\n"], "newest first");

    // The phone sleeps; the laptop sends the message and clears the draft; the phone wakes
    // up to the cleared draft.
    let asleep = phone_ws.pos;
    drop(phone_ws);
    let r = laptop.put(&path, json!({"body": "   "})).await;
    assert_eq!((r.status, &r.body["body"]), (200, &json!("")), "blank clears");
    let mut phone_ws = Ws::connect(&srv.url, phone.token(), Some(asleep)).await;
    let drafts: Vec<Value> = phone_ws
        .drain_events(QUIET)
        .await
        .into_iter()
        .filter(|e| e["data"]["type"] == "draft.updated")
        .map(|e| e["data"]["draft"].clone())
        .collect();
    assert!(drafts.last().is_some_and(|d| d["body"] == "" && d["conversation_id"] == json!(c)), "{drafts:?}");
    let listed = phone.get("/api/v1/me/drafts").await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1, "only the reply's draft is left");

    // A thread whose first message was deleted takes its drafts with it, and keeps no new
    // text (clearing still works).
    assert_eq!(owner.delete(&format!("/api/v1/messages/{root}")).await.status, 204);
    assert!(laptop.get("/api/v1/me/drafts").await.body["items"].as_array().unwrap().is_empty());
    let r = laptop.put(&path, json!({"body": "I think so", "thread_root_id": root})).await;
    assert_eq!((r.status, r.code(), &r.body["field"]), (422, "invalid_input", &json!("thread_root_id")), "{}", r.body);
    assert_eq!(laptop.put(&path, json!({"body": "", "thread_root_id": root})).await.status, 200);

    // In an archived conversation nothing can be sent, so no text is kept (clearing is).
    assert_eq!(owner.post_empty(&format!("/api/v1/conversations/{c}/archive")).await.status, 200);
    assert_error(&laptop.put(&path, json!({"body": "归档后"})).await, 403, "forbidden");
    assert_eq!(laptop.put(&path, json!({"body": ""})).await.status, 200);
}

/// The `thread.state` events among `events`: (conversation, root, following, read_seq).
fn thread_states(events: &[Value]) -> Vec<(String, String, bool, i64)> {
    events
        .iter()
        .filter(|e| e["data"]["type"] == "thread.state")
        .map(|e| {
            let d = &e["data"];
            (
                d["conversation_id"].as_str().unwrap().to_owned(),
                d["root_id"].as_str().unwrap().to_owned(),
                d["following"].as_bool().unwrap(),
                d["read_seq"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn reply(api: &Api, c: &str, root: &str) {
    let r =
        api.post(&format!("/api/v1/conversations/{c}/messages"), json!({"body": "回复", "thread_root_id": root})).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test]
async fn replying_follows_the_thread_on_every_device() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let (bob_id, laptop) = owner.create_user(&srv, "bob", "member", None).await;
    let phone = srv.sign_in("bob", "bob-password").await;
    let c = channel(&owner, "public", "Replies 回复", &[&bob_id]).await;
    let root = send(&owner, &c, "question").await["id"].as_str().unwrap().to_owned();
    let mut phone_ws = Ws::connect(&srv.url, phone.token(), None).await;
    let r = laptop
        .post(&format!("/api/v1/conversations/{c}/messages"), json!({"body": "答", "thread_root_id": root}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let seq = r.body["seq"].as_i64().unwrap();
    let events = phone_ws.drain_events(QUIET).await;
    assert_eq!(thread_states(&events), vec![(c.clone(), root.clone(), true, seq)], "read up to the reply: {events:?}");
}

#[tokio::test]
async fn leaving_unfollows_the_threads_there_on_every_device() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let (bob_id, laptop) = owner.create_user(&srv, "bob", "member", None).await;
    let phone = srv.sign_in("bob", "bob-password").await;
    let (carol_id, carol) = owner.create_user(&srv, "carol", "member", None).await;
    let c = channel(&owner, "public", "Threads 话题", &[&bob_id, &carol_id]).await;
    let other = channel(&owner, "public", "Elsewhere", &[&bob_id]).await;
    let root = send(&owner, &c, "question").await["id"].as_str().unwrap().to_owned();
    let elsewhere = send(&owner, &other, "another question").await["id"].as_str().unwrap().to_owned();
    // Replying follows a thread.
    reply(&laptop, &c, &root).await;
    reply(&carol, &c, &root).await;
    reply(&laptop, &other, &elsewhere).await;
    let followed = |v: Value| -> Vec<String> {
        let mut roots: Vec<String> =
            v["items"].as_array().unwrap().iter().map(|t| t["root_id"].as_str().unwrap().to_owned()).collect();
        roots.sort();
        roots
    };
    let mut both = vec![root.clone(), elsewhere.clone()];
    both.sort();
    assert_eq!(followed(phone.get("/api/v1/threads").await.body), both);
    let mut phone_ws = Ws::connect(&srv.url, phone.token(), None).await;
    let carol_ws = Ws::connect(&srv.url, carol.token(), None).await;
    let carol_asleep = carol_ws.pos;
    drop(carol_ws);

    // Leaving on the laptop: the phone hears that the thread there is no longer followed (and
    // nothing of the one elsewhere), though bob is no longer in the conversation.
    assert_eq!(laptop.post_empty(&format!("/api/v1/conversations/{c}/leave")).await.status, 204);
    let events = phone_ws.drain_events(QUIET).await;
    assert_eq!(thread_states(&events), vec![(c.clone(), root.clone(), false, 0)], "{events:?}");
    assert!(events.iter().any(|e| e["data"]["type"] == "conversation.removed"), "{events:?}");
    assert_eq!(followed(phone.get("/api/v1/threads").await.body), vec![elsewhere.clone()]);

    // Removed by an admin while her device was away: it hears of it when it comes back.
    assert_eq!(owner.delete(&format!("/api/v1/conversations/{c}/members/{carol_id}")).await.status, 204);
    let mut carol_ws = Ws::connect(&srv.url, carol.token(), Some(carol_asleep)).await;
    assert_eq!(carol_ws.ready["resumed"], true);
    let events = carol_ws.drain_events(QUIET).await;
    assert_eq!(thread_states(&events), vec![(c.clone(), root.clone(), false, 0)], "{events:?}");

    // Taken out by the department that brought them: the same.
    let eng = owner.create_department("研发中心", None).await;
    let ops = owner.create_department("运维组", None).await;
    let (dan_id, dan) = owner.create_user(&srv, "dan", "member", Some(&eng)).await;
    let r = owner
        .post(
            "/api/v1/conversations",
            json!({"kind": "project", "name": "Launch", "member_ids": [],
                "departments": [{"department_id": eng, "include_subdepartments": true}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let p = r.body["conversation"]["id"].as_str().unwrap().to_owned();
    let launch = send(&owner, &p, "launch date?").await["id"].as_str().unwrap().to_owned();
    reply(&dan, &p, &launch).await;
    let mut dan_ws = Ws::connect(&srv.url, dan.token(), None).await;
    let r = owner.patch(&format!("/api/v1/users/{dan_id}"), json!({"primary_department_id": ops})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let events = dan_ws.drain_events(QUIET).await;
    assert_eq!(thread_states(&events), vec![(p, launch, false, 0)], "{events:?}");
    assert!(dan.get("/api/v1/threads").await.body["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_slow_consumer_is_cut_off_while_others_keep_receiving() {
    let srv = TestServer::start_with(qiao_store::testing::TestDb::sqlite(), |c| {
        c.realtime_queue = 16;
        c.socket_send_buffer_kib = 64;
        c.message_burst = 10_000.0;
        c.message_rate_per_second = 10_000.0;
    })
    .await;
    let owner = srv.owner().await;
    let (bob_id, bob) = owner.create_user(&srv, "bob", "member", None).await;
    let c = channel(&owner, "public", "Firehose", &[&bob_id]).await;
    // Bob's client has a tiny receive buffer.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let addr: std::net::SocketAddr = srv.url.trim_start_matches("http://").parse().unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (mut slow, _) =
        tokio_tungstenite::client_async(crate::ws::ws_url(&srv.url), tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
    slow.send(Message::Text(json!({"op": "hello", "token": bob.token()}).to_string().into())).await.unwrap();
    // It reads nothing until the server has given up on it (however slowly this machine sends),
    // then reads on to the close frame, within the server's write timeout.
    let url = srv.url.clone();
    // (Counted from here: the metrics are the process's, which other tests may share.)
    let before = slow_consumers(&url).await;
    let slow_reader = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while slow_consumers(&url).await == before {
            assert!(tokio::time::Instant::now() < deadline, "never cut off");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        loop {
            match tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut slow)).await {
                Ok(Some(Ok(Message::Close(f)))) => return f.map(|f| u16::from(f.code)),
                Ok(Some(Ok(_))) => continue,
                _ => return None,
            }
        }
    });
    let mut fast = Ws::connect(&srv.url, owner.token(), None).await;

    let big = "大".repeat(3000);
    let total = 300;
    let sender = {
        let (owner, c, big) = (owner.clone(), c.clone(), big.clone());
        tokio::spawn(async move {
            for i in 0..total {
                send(&owner, &c, &format!("{i} {big}")).await;
            }
        })
    };
    // The fast reader gets everything, in order, without waiting for the slow one.
    for received in 0..total {
        let e = fast.expect_event("message.created").await;
        assert!(e["data"]["message"]["body"].as_str().unwrap().starts_with(&format!("{received} ")), "in order");
    }
    sender.await.unwrap();
    assert_eq!(slow_reader.await.unwrap(), Some(4008), "the slow reader is told why it was dropped");
    // …and it can resume later.
    Ws::connect(&srv.url, bob.token(), Some(0)).await;
}

/// A client whose frames are still on their way when the server closes (a pipelined hello
/// with a bad token, a burst past the frame budget) still reads the error and the close code:
/// the server does not drop the connection with its frames unread (the kernel would answer
/// with a reset, and the client's library would discard what it had received).
#[tokio::test]
async fn a_close_reaches_a_client_with_frames_still_on_their_way() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    for round in 0..3 {
        let (mut raw, _) = tokio_tungstenite::connect_async(crate::ws::ws_url(&srv.url)).await.unwrap();
        let mut frames = vec![json!({"op": "hello", "token": "qiao_bogus", "resume_from": 0}).to_string()];
        frames.extend((0..40).map(|i| json!({"op": "ping", "nonce": format!("p{i}")}).to_string()));
        for f in frames {
            raw.feed(Message::Text(f.into())).await.unwrap();
        }
        raw.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let error = next_json(&mut raw, Duration::from_secs(5)).await;
        assert_eq!(error.as_ref().map(|e| e["code"].clone()), Some(json!("unauthenticated")), "round {round}");
        assert!(matches!(ended(&mut raw, Duration::from_secs(5)).await, Ended::Closed(Some(4001))), "round {round}");
    }
    // Past the frame budget in one burst: every answer, then 4400, still arrives.
    let mut ws = Ws::connect(&srv.url, owner.token(), None).await;
    for i in 0..80 {
        ws.inner.feed(Message::Text(json!({"op": "ping", "nonce": format!("b{i}")}).to_string().into())).await.unwrap();
    }
    ws.inner.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(matches!(ws.ended(Duration::from_secs(10)).await, Ended::Closed(Some(4400))));
}

#[tokio::test]
async fn bad_frames_get_errors_or_close_codes_never_a_crash() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let mut ws = Ws::connect(&srv.url, owner.token(), None).await;
    for bad in ["{not json", r#"{"op":"fly"}"#, r#"{"op":"ping","x":1}"#, r#"[1,2]"#, r#"{"op":"hello"}"#] {
        ws.inner.send(Message::Text(bad.into())).await.unwrap();
        let e = ws.expect_op("error").await;
        assert_eq!(e["code"], "invalid_frame", "{bad}");
    }
    ws.send(json!({"op": "ping", "nonce": "n1"})).await;
    assert_eq!(ws.expect_op("pong").await["nonce"], "n1");
    ws.send(json!({"op": "typing", "conversation_id": "01a1fccf-0000-7000-8000-0000000000ff"})).await;
    assert_eq!(ws.expect_op("error").await["code"], "forbidden");

    // Oversize frames close with 1009; binary frames with 4400.
    ws.inner.send(Message::Text("x".repeat(40_000).into())).await.unwrap();
    assert!(matches!(ws.ended(Duration::from_secs(5)).await, Ended::Closed(Some(1009)) | Ended::Gone));
    let mut ws = Ws::connect(&srv.url, owner.token(), None).await;
    ws.inner.send(Message::Binary(vec![0xde, 0xad, 0xbe, 0xef].into())).await.unwrap();
    assert!(matches!(ws.ended(Duration::from_secs(5)).await, Ended::Closed(Some(4400))));
    // Too many bad frames in a row close the connection.
    let mut ws = Ws::connect(&srv.url, owner.token(), None).await;
    for _ in 0..11 {
        ws.inner.send(Message::Text("garbage".into())).await.unwrap();
    }
    assert!(matches!(ws.ended(Duration::from_secs(5)).await, Ended::Closed(Some(4400))));
    // A flood of frames beyond the rate limit is refused, then closed. (One at a time: a
    // socket closed with frames still unread resets, and the client would lose the answers.)
    let mut ws = Ws::connect(&srv.url, owner.token(), None).await;
    let (mut refused, mut code) = (0, None);
    for i in 0..200 {
        ws.send(json!({"op": "ping", "nonce": format!("{i}")})).await;
        match tokio::time::timeout(Duration::from_secs(5), ws.inner.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.contains("\"rate_limited\"") => refused += 1,
            Ok(Some(Ok(Message::Close(f)))) => {
                code = f.map(|f| u16::from(f.code));
                break;
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(refused > 0, "frames beyond the budget are refused");
    assert_eq!(code, Some(4400), "and a stream of them closes the connection");
    // The server is fine.
    assert_eq!(owner.get("/api/v1/me").await.status, 200);
    let mut ws = Ws::connect(&srv.url, owner.token(), None).await;
    ws.send(json!({"op": "ping"})).await;
    ws.expect_op("pong").await;
}

#[tokio::test]
async fn frames_that_break_the_websocket_protocol_are_closed_with_its_codes() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let hello = json!({"op": "hello", "token": owner.token()}).to_string();
    // (first byte: FIN, reserved bits and opcode; payload; masked; the close code expected)
    let cases: [(&str, u8, &[u8], bool, u16); 8] = [
        ("an unmasked frame", 0x81, b"{}", false, 1002),
        ("reserved bits set", 0xc1, b"{}", true, 1002),
        ("a reserved opcode", 0x83, b"{}", true, 1002),
        ("a continuation with nothing to continue", 0x80, b"{}", true, 1002),
        ("a fragmented ping", 0x09, b"p", true, 1002),
        ("a ping over 125 bytes", 0x89, &[b'p'; 126], true, 1002),
        ("a close frame of one byte", 0x88, &[3], true, 1002),
        ("text that is not UTF-8", 0x81, b"{\"op\":\"ping\",\"nonce\":\"\xff\xfe\"}", true, 1007),
    ];
    for (name, first, payload, masked, code) in cases {
        for after_hello in [false, true] {
            let mut raw = RawWs::connect(&srv.url).await;
            if after_hello {
                raw.frame(0x81, hello.as_bytes(), true).await;
            }
            raw.frame(first, payload, masked).await;
            let got = raw.close_code(Duration::from_secs(5)).await;
            assert_eq!(got, Some(code), "{name} (after hello: {after_hello})");
        }
    }
    // A frame split over continuations is fine, and the server is too.
    let mut raw = RawWs::connect(&srv.url).await;
    let (head, tail) = hello.as_bytes().split_at(10);
    raw.frame(0x01, head, true).await;
    raw.frame(0x80, tail, true).await;
    raw.frame(0x81, br#"{"op":"bogus"}"#, true).await;
    raw.frame(0x88, &1000u16.to_be_bytes(), true).await;
    assert_eq!(raw.close_code(Duration::from_secs(5)).await, Some(1000), "the close handshake is answered");
    // Before hello too; a close code no endpoint may send is answered with 1002.
    for (sent, answer) in [(1001u16, 1001), (999, 1002)] {
        let mut raw = RawWs::connect(&srv.url).await;
        raw.frame(0x88, &sent.to_be_bytes(), true).await;
        assert_eq!(raw.close_code(Duration::from_secs(5)).await, Some(answer), "close {sent} before hello");
    }
    let mut ws = Ws::connect(&srv.url, owner.token(), None).await;
    ws.send(json!({"op": "ping", "nonce": "still here"})).await;
    assert_eq!(ws.expect_op("pong").await["nonce"], "still here");
}

#[tokio::test]
async fn requests_that_are_not_websocket_handshakes_are_told_what_to_do() {
    let srv = TestServer::start().await;
    let anon = Api::new(&srv.url, Auth::None);
    // A plain GET: 426, naming the protocol to switch to.
    let r = anon.get("/api/v1/ws").await;
    assert_eq!((r.status, r.code()), (426, "upgrade_required"), "{}", r.body);
    assert_eq!(r.headers["upgrade"], "websocket");
    let handshake = |version: &'static str| {
        anon.request(reqwest::Method::GET, "/api/v1/ws")
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", version)
    };
    // A WebSocket version we do not speak: 426 with the one we do.
    let r = anon.send(handshake("8").header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")).await;
    assert_eq!((r.status, r.code()), (426, "upgrade_required"), "{}", r.body);
    assert_eq!(r.headers["sec-websocket-version"], "13");
    // A WebSocket handshake without its key: malformed, 400.
    let r = anon.send(handshake("13")).await;
    assert_eq!((r.status, r.code()), (400, "invalid_parameter"), "{}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("WebSocket"), "{}", r.body);
    // Nor with one that is not a 16-byte nonce in base64.
    for key in ["short", "c2hvcnQ=", "dGhlIHNhbXBsZSBub25jZQ==x"] {
        let r = anon.send(handshake("13").header("sec-websocket-key", key)).await;
        assert_eq!((r.status, r.code()), (400, "invalid_parameter"), "{key}: {}", r.body);
    }
    // A handshake must be a GET (the route also answers HEAD).
    let head = anon
        .request(reqwest::Method::HEAD, "/api/v1/ws")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status().as_u16(), 400, "not upgraded");
}

#[tokio::test]
async fn unauthenticated_revoked_and_disabled_connections_are_closed() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    // No credentials, a garbage token, and a first frame that is not hello.
    for hello in [json!({"op": "hello"}), json!({"op": "hello", "token": "qiao_nope"})] {
        let (mut raw, _) = tokio_tungstenite::connect_async(crate::ws::ws_url(&srv.url)).await.unwrap();
        raw.send(Message::Text(hello.to_string().into())).await.unwrap();
        assert_eq!(next_json(&mut raw, Duration::from_secs(5)).await.unwrap()["code"], "unauthenticated");
        assert!(matches!(ended(&mut raw, Duration::from_secs(5)).await, Ended::Closed(Some(4001))));
    }
    let (mut raw, _) = tokio_tungstenite::connect_async(crate::ws::ws_url(&srv.url)).await.unwrap();
    raw.send(Message::Text(r#"{"op":"ping"}"#.into())).await.unwrap();
    assert!(matches!(ended(&mut raw, Duration::from_secs(5)).await, Ended::Closed(Some(4400))));
    // No hello within 10 s is a stalled network, not bad credentials: reconnect (4009), do
    // not sign out (4001).
    let (mut raw, _) = tokio_tungstenite::connect_async(crate::ws::ws_url(&srv.url)).await.unwrap();
    assert!(matches!(ended(&mut raw, Duration::from_secs(15)).await, Ended::Closed(Some(4009))));
    // A library's keep-alive pings before hello are answered and passed over; a stream of
    // them is not a hello.
    let (mut raw, _) = tokio_tungstenite::connect_async(crate::ws::ws_url(&srv.url)).await.unwrap();
    raw.send(Message::Ping(b"early".to_vec().into())).await.unwrap();
    let hello = json!({"op": "hello", "token": owner.token()});
    raw.send(Message::Text(hello.to_string().into())).await.unwrap();
    assert_eq!(next_json(&mut raw, Duration::from_secs(5)).await.unwrap()["op"], "ready");
    let (mut raw, _) = tokio_tungstenite::connect_async(crate::ws::ws_url(&srv.url)).await.unwrap();
    for _ in 0..5 {
        raw.send(Message::Ping(b"early".to_vec().into())).await.unwrap();
    }
    assert!(matches!(ended(&mut raw, Duration::from_secs(5)).await, Ended::Closed(Some(4400))));
    // A hello that does not parse says why.
    let (mut raw, _) = tokio_tungstenite::connect_async(crate::ws::ws_url(&srv.url)).await.unwrap();
    raw.send(Message::Text(r#"{"op":"hello","resume_from":"7"}"#.into())).await.unwrap();
    let e = next_json(&mut raw, Duration::from_secs(5)).await.unwrap();
    assert_eq!(e["code"], "invalid_frame");
    assert!(e["message"].as_str().unwrap().contains("invalid type: string \"7\""), "{e}");
    assert!(matches!(ended(&mut raw, Duration::from_secs(5)).await, Ended::Closed(Some(4400))));
    // Plain HTTP to the endpoint is a clear 4xx.
    let r = owner.get("/api/v1/ws").await;
    assert_eq!((r.status, r.code()), (426, "upgrade_required"));

    // A browser's socket is authenticated by its cookie at the upgrade; an account disabled
    // before its hello (before the connection is registered) is closed at the hello.
    let (late_id, _) = owner.create_user(&srv, "late", "member", None).await;
    let r = srv.anon().post("/api/v1/auth/sign-in", json!({"login": "late", "password": "late-password"})).await;
    let cookie = r.cookie("qiao_session").unwrap();
    let (cookie, origin) = (format!("qiao_session={cookie}"), srv.url.clone());
    let mut raw = Ws::connect_with_headers(&srv.url, &[("cookie", &cookie), ("origin", &origin)]).await;
    assert_eq!(owner.post_empty(&format!("/api/v1/users/{late_id}/disable")).await.status, 200);
    raw.send(Message::Text(json!({"op": "hello"}).to_string().into())).await.unwrap();
    assert!(matches!(ended(&mut raw, Duration::from_secs(5)).await, Ended::Closed(Some(4003))));

    // Signing out closes that session's socket, not the others.
    let (user_id, user) = owner.create_user(&srv, "leaver", "member", None).await;
    let other_device = srv.sign_in("leaver", "leaver-password").await;
    let mut a = Ws::connect(&srv.url, user.token(), None).await;
    let mut b = Ws::connect(&srv.url, other_device.token(), None).await;
    assert_eq!(user.post_empty("/api/v1/auth/sign-out").await.status, 204);
    assert!(matches!(a.ended(Duration::from_secs(5)).await, Ended::Closed(Some(4003))));
    b.expect_event("session.revoked").await;
    // Disabling the account closes the rest at once.
    owner.post_empty(&format!("/api/v1/users/{user_id}/disable")).await;
    assert!(matches!(b.ended(Duration::from_secs(5)).await, Ended::Closed(Some(4003))));
}

#[tokio::test]
async fn connecting_too_often_is_refused_for_a_while() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let (_, bob) = owner.create_user(&srv, "bob", "member", None).await;
    // A burst (a browser's many tabs coming back after a restart) of 40 is let through, and
    // one more per second it took (a slow machine may take more than a second)…
    let started = Instant::now();
    let mut accepted = 0;
    let (mut raw, refusal) = loop {
        let (mut raw, _) = tokio_tungstenite::connect_async(crate::ws::ws_url(&srv.url)).await.unwrap();
        raw.send(Message::Text(json!({"op": "hello", "token": owner.token()}).to_string().into())).await.unwrap();
        let first = next_json(&mut raw, Duration::from_secs(5)).await.unwrap();
        if first["op"] != "ready" {
            break (raw, first);
        }
        accepted += 1;
        assert!(accepted <= 200, "never refused");
        raw.close(None).await.unwrap();
        assert!(matches!(ended(&mut raw, Duration::from_secs(5)).await, Ended::Closed(_)));
    };
    let allowed = 40 + started.elapsed().as_secs() + 1;
    assert!((40..=allowed).contains(&accepted), "{accepted} let through, {allowed} at most");
    // …then a connection is refused, with how long to wait.
    assert_eq!(refusal["code"], "rate_limited", "{refusal}");
    assert!(refusal["message"].as_str().unwrap().contains("wait 1 s"), "{refusal}");
    assert_eq!(refusal["retry_after_secs"], 1, "and says it in a field too");
    assert!(matches!(ended(&mut raw, Duration::from_secs(5)).await, Ended::Closed(Some(4030))));
    // Others connect as usual.
    Ws::connect(&srv.url, bob.token(), None).await;
}

/// A person who becomes a guest (or stops being one) is reconnected, so that what their
/// connection receives and whose presence it may follow match the new role.
#[tokio::test]
async fn a_role_change_to_or_from_guest_reconnects_the_person() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let (bob_id, bob) = owner.create_user(&srv, "bob", "member", None).await;
    let mut ws = Ws::connect(&srv.url, bob.token(), None).await;
    let r = owner.patch(&format!("/api/v1/users/{bob_id}"), json!({"title": "Engineer"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    ws.expect_event("user.updated").await;
    let r = owner.patch(&format!("/api/v1/users/{bob_id}"), json!({"role": "guest"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(matches!(ws.ended(Duration::from_secs(5)).await, Ended::Closed(Some(4010))));

    // Back as a guest: staff-wide news no longer reaches him.
    let mut ws = Ws::connect(&srv.url, bob.token(), Some(ws.pos)).await;
    assert_eq!(ws.ready["resumed"], true);
    owner.create_department("法务部", None).await;
    let r = owner.patch(&format!("/api/v1/users/{bob_id}"), json!({"title": "Partner"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let kinds: Vec<Value> = ws.drain_events(QUIET).await.iter().map(|e| e["data"]["type"].clone()).collect();
    assert!(kinds.contains(&json!("user.updated")), "{kinds:?}");
    assert!(!kinds.contains(&json!("department.created")), "staff-wide news: {kinds:?}");
    // And staff again.
    let r = owner.patch(&format!("/api/v1/users/{bob_id}"), json!({"role": "member"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(matches!(ws.ended(Duration::from_secs(5)).await, Ended::Closed(Some(4010))));
}

#[tokio::test]
async fn browsers_connect_with_their_cookie_from_our_origin_only() {
    let srv = TestServer::start().await;
    srv.owner().await;
    let r = srv.anon().post("/api/v1/auth/sign-in", json!({"login": "owner", "password": "owner-password"})).await;
    let cookie = r.cookie("qiao_session").unwrap();
    let host = srv.url.trim_start_matches("http://").to_owned();
    let ours = format!("http://{host}");
    let cookie_header = format!("qiao_session={cookie}");
    let raw = Ws::connect_with_headers(&srv.url, &[("cookie", &cookie_header), ("origin", &ours)]).await;
    let ws = Ws::hello(raw, json!({"op": "hello"})).await;
    assert_eq!(ws.ready["op"], "ready");
    let mut raw =
        Ws::connect_with_headers(&srv.url, &[("cookie", &cookie_header), ("origin", "https://evil.example")]).await;
    raw.send(Message::Text(json!({"op": "hello"}).to_string().into())).await.unwrap();
    assert_eq!(next_json(&mut raw, Duration::from_secs(5)).await.unwrap()["code"], "unauthenticated");
}

/// The presence of `who` as a new connection of `watcher` is told it.
async fn presence_of(srv: &TestServer, watcher: &Api, who: &str) -> String {
    let mut ws = Ws::connect(&srv.url, watcher.token(), None).await;
    ws.send(json!({"op": "presence_subscribe", "user_ids": [who]})).await;
    ws.expect_op("presence").await["status"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn do_not_disturb_outlives_a_restart() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let (bob_id, bob) = owner.create_user(&srv, "bob", "member", None).await;
    let mut phone = Ws::connect(&srv.url, bob.token(), None).await;
    phone.send(json!({"op": "presence", "status": "dnd"})).await;
    let mut watch = Ws::connect(&srv.url, owner.token(), None).await;
    watch.send(json!({"op": "presence_subscribe", "user_ids": [bob_id]})).await;
    watch.expect_presence(&bob_id, "dnd").await;
    drop((phone, watch));

    // Nothing of it is in memory after a restart; bob comes back on another device.
    let srv = TestServer::start_with(srv.stop().await, |_| {}).await;
    let (owner, bob) = (Api::new(&srv.url, owner.auth.clone()), Api::new(&srv.url, bob.auth.clone()));
    let mut laptop = Ws::connect(&srv.url, bob.token(), None).await;
    assert_eq!(presence_of(&srv, &owner, &bob_id).await, "dnd");
    // Turned off, it stays off.
    laptop.send(json!({"op": "presence", "status": "online"})).await;
    let mut watch = Ws::connect(&srv.url, owner.token(), None).await;
    watch.send(json!({"op": "presence_subscribe", "user_ids": [bob_id]})).await;
    watch.expect_presence(&bob_id, "online").await;
    drop((laptop, watch));
    let srv = TestServer::start_with(srv.stop().await, |_| {}).await;
    let (owner, bob) = (Api::new(&srv.url, owner.auth.clone()), Api::new(&srv.url, bob.auth.clone()));
    let _laptop = Ws::connect(&srv.url, bob.token(), None).await;
    assert_eq!(presence_of(&srv, &owner, &bob_id).await, "online");
}

#[tokio::test]
async fn typing_and_presence_reach_those_who_may_see_them() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let owner_id = owner.get("/api/v1/me").await.body["user"]["id"].as_str().unwrap().to_owned();
    let (bob_id, bob) = owner.create_user(&srv, "bob", "member", None).await;
    let (guest_id, guest) = owner.create_user(&srv, "partner", "guest", None).await;
    let c = channel(&owner, "private", "Typing", &[&bob_id]).await;
    let mut owner_ws = Ws::connect(&srv.url, owner.token(), None).await;
    let mut bob_ws = Ws::connect(&srv.url, bob.token(), None).await;

    bob_ws.send(json!({"op": "typing", "conversation_id": c})).await;
    let t = owner_ws.expect_op("typing").await;
    assert_eq!((t["user_id"].as_str(), t["conversation_id"].as_str()), (Some(bob_id.as_str()), Some(c.as_str())));
    // Repeats inside the throttle window are not forwarded; a thread that is not one of this
    // conversation's is refused.
    bob_ws.send(json!({"op": "typing", "conversation_id": c})).await;
    let elsewhere = "01a1fccf-0000-7000-8000-0000000000ff";
    bob_ws.send(json!({"op": "typing", "conversation_id": c, "thread_root_id": elsewhere})).await;
    assert!(owner_ws.next(QUIET).await.is_none());
    assert_eq!(bob_ws.expect_op("error").await["code"], "invalid_frame");
    // Typing in a thread right after the channel is news of its own (per conversation and
    // thread: after a quarter-second pause, so that naming thread after thread cannot multiply
    // notices), and is throttled in turn.
    let root = send(&owner, &c, "a thread").await["id"].as_str().unwrap().to_owned();
    owner_ws.expect_event("message.created").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..2 {
        bob_ws.send(json!({"op": "typing", "conversation_id": c, "thread_root_id": root})).await;
    }
    let t = owner_ws.expect_op("typing").await;
    assert_eq!(t["thread_root_id"].as_str(), Some(root.as_str()));
    assert!(owner_ws.next(QUIET).await.is_none());

    // Presence: a snapshot on subscribing, then changes.
    owner_ws.send(json!({"op": "presence_subscribe", "user_ids": [bob_id, guest_id]})).await;
    let mut snapshot = BTreeMap::new();
    for _ in 0..2 {
        let p = owner_ws.expect_op("presence").await;
        snapshot.insert(p["user_id"].as_str().unwrap().to_owned(), p["status"].as_str().unwrap().to_owned());
    }
    assert_eq!(snapshot[&bob_id], "online");
    assert_eq!(snapshot[&guest_id], "offline");
    bob_ws.send(json!({"op": "presence", "status": "dnd"})).await;
    let p = owner_ws.expect_op("presence").await;
    assert_eq!((p["user_id"].as_str(), p["status"].as_str()), (Some(bob_id.as_str()), Some("dnd")));
    // Using the device does not end do-not-disturb (a change would be announced within 3 s:
    // at most every 2 s per person, on a 1 s tick)…
    bob_ws.send(json!({"op": "active"})).await;
    assert!(owner_ws.next(Duration::from_millis(3500)).await.is_none(), "still busy");
    // (Following again sends only the people not followed already.)
    owner_ws.send(json!({"op": "presence_subscribe", "user_ids": [bob_id, guest_id]})).await;
    assert!(owner_ws.next(QUIET).await.is_none());
    // …but brings a device back from away.
    bob_ws.send(json!({"op": "presence", "status": "online"})).await;
    assert_eq!(owner_ws.expect_op("presence").await["status"], "online");
    bob_ws.send(json!({"op": "presence", "status": "away"})).await;
    assert_eq!(owner_ws.expect_op("presence").await["status"], "away");
    bob_ws.send(json!({"op": "active"})).await;
    assert_eq!(owner_ws.expect_op("presence").await["status"], "online");
    // The most people one may follow fit in one frame.
    owner_ws.send(json!({"op": "presence_subscribe", "user_ids": []})).await;
    let mut many = vec![bob_id.clone()];
    many.extend((1..500).map(|i| format!("01a1fccf-0000-7000-8000-{i:012x}")));
    owner_ws.send(json!({"op": "presence_subscribe", "user_ids": many})).await;
    let p = owner_ws.expect_op("presence").await;
    assert_eq!((p["user_id"].as_str(), p["status"].as_str()), (Some(bob_id.as_str()), Some("online")));
    while let Some(f) = owner_ws.next(QUIET).await {
        assert_eq!(f["op"], "presence", "{f}");
    }

    // A guest may only follow people they share a conversation with.
    let mut guest_ws = Ws::connect(&srv.url, guest.token(), None).await;
    guest_ws.send(json!({"op": "presence_subscribe", "user_ids": [owner_id]})).await;
    assert!(guest_ws.next(QUIET).await.is_none(), "nothing about a stranger");

    // Subscriptions have a budget of their own: bursts of five, then one a second.
    let mut eager = Ws::connect(&srv.url, owner.token(), None).await;
    for _ in 0..6 {
        eager.send(json!({"op": "presence_subscribe", "user_ids": []})).await;
    }
    assert_eq!(eager.expect_op("error").await["code"], "rate_limited");
    assert!(eager.next(QUIET).await.is_none(), "only the sixth was refused");

    // Where one may not post, one may not say one is typing either (an announcement channel).
    let news = channel(&owner, "announcement", "公告 News", &[&bob_id]).await;
    bob_ws.send(json!({"op": "typing", "conversation_id": news})).await;
    assert_eq!(bob_ws.expect_op("error").await["code"], "forbidden");
    owner_ws.send(json!({"op": "typing", "conversation_id": news})).await;
    let t = bob_ws.expect_op("typing").await;
    assert_eq!(t["conversation_id"].as_str(), Some(news.as_str()), "its admin may");
}

#[tokio::test]
async fn shutdown_tells_clients_to_come_back() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let mut ws = Ws::connect(&srv.url, owner.token(), None).await;
    // A connection still to say hello (the hello timeout is 10 s) is told too.
    let (mut waiting, _) = tokio_tungstenite::connect_async(crate::ws::ws_url(&srv.url)).await.unwrap();
    let db = srv.stop().await;
    assert!(matches!(ws.ended(Duration::from_secs(5)).await, Ended::Closed(Some(1001)) | Ended::Gone));
    assert!(matches!(crate::ws::ended(&mut waiting, Duration::from_secs(5)).await, Ended::Closed(Some(1001))));
    drop(db);
}
