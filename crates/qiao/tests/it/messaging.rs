//! Messages over HTTP: idempotency, order, threads, edits, deletes, reactions, pins,
//! mentions and read state.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::conversations::channel;
use crate::harness::{Api, TestServer, assert_error};

async fn send(api: &Api, c: &str, body: Value) -> Value {
    let r = api.post(&format!("/api/v1/conversations/{c}/messages"), body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

async fn my_state(api: &Api, c: &str) -> Value {
    api.get(&format!("/api/v1/conversations/{c}")).await.body["me"].clone()
}

#[tokio::test]
async fn retried_sends_never_duplicate() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let c = channel(&owner, "public", "General", &[]).await;
    let body = json!({"body": "只发一次", "client_key": "0193f2c1-retry-1"});
    let first = owner.post(&format!("/api/v1/conversations/{c}/messages"), body.clone()).await;
    assert_eq!(first.status, 201);
    // A retry (say after a timeout) returns the same message.
    for _ in 0..3 {
        let again = owner.post(&format!("/api/v1/conversations/{c}/messages"), body.clone()).await;
        assert_eq!(again.status, 200);
        assert_eq!(again.headers["idempotent-replayed"], "true");
        assert_eq!(again.body["id"], first.body["id"]);
        assert_eq!(again.body["seq"], first.body["seq"]);
    }
    // Concurrent retries race into the writer; still one message.
    let key = json!({"body": "并发重试", "client_key": "0193f2c1-retry-2"});
    let path = format!("/api/v1/conversations/{c}/messages");
    let (a, b, d) =
        tokio::join!(owner.post(&path, key.clone()), owner.post(&path, key.clone()), owner.post(&path, key.clone()));
    assert_eq!(a.body["id"], b.body["id"]);
    assert_eq!(b.body["id"], d.body["id"]);
    assert_eq!([a.status, b.status, d.status].iter().filter(|s| **s == 201).count(), 1);
    let history = owner.get(&path).await.body;
    assert_eq!(history["items"].as_array().unwrap().len(), 2);
    // Reusing a key for a different message is refused, not silently merged.
    let r = owner.post(&path, json!({"body": "something else", "client_key": "0193f2c1-retry-1"})).await;
    assert_error(&r, 409, "conflict");
    assert_eq!(r.body["field"], "client_key");
    // The same text as a thread reply is a different message too.
    let root = first.body["id"].as_str().unwrap();
    let reply = json!({"body": "只发一次", "client_key": "0193f2c1-retry-1", "thread_root_id": root});
    assert_error(&owner.post(&path, reply).await, 409, "conflict");
    assert_eq!(owner.get(&path).await.body["items"].as_array().unwrap().len(), 2, "nothing written");
    // A retry arriving after the message was edited, or deleted, gets it as it is now
    // (sending it again would bring back what its author or a moderator took away).
    let id = first.body["id"].as_str().unwrap();
    assert_eq!(owner.patch(&format!("/api/v1/messages/{id}"), json!({"body": "改过了"})).await.status, 200);
    let again = owner.post(&path, body.clone()).await;
    assert_eq!((again.status, again.body["id"].as_str(), again.body["body"].as_str()), (200, Some(id), Some("改过了")));
    let other = json!({"body": "改过了", "client_key": "0193f2c1-retry-1"});
    assert_error(&owner.post(&path, other).await, 409, "conflict");
    assert_eq!(owner.delete(&format!("/api/v1/messages/{id}")).await.status, 204);
    let again = owner.post(&path, body.clone()).await;
    assert_eq!((again.status, again.body["id"].as_str()), (200, Some(id)));
    assert!(again.body["deleted_at"].is_i64(), "{}", again.body);
    assert_eq!(owner.get(&path).await.body["items"].as_array().unwrap().len(), 2, "nothing written");
    // A send stored but whose answer was lost, retried after it could no longer be made (its
    // thread's first message deleted, the conversation archived): the stored message.
    let root = owner.post(&path, json!({"body": "话题"})).await.body["id"].as_str().unwrap().to_owned();
    let reply = json!({"body": "回复", "client_key": "0193f2c1-retry-3", "thread_root_id": root});
    let first = owner.post(&path, reply.clone()).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(owner.delete(&format!("/api/v1/messages/{root}")).await.status, 204);
    let again = owner.post(&path, reply).await;
    assert_eq!((again.status, &again.body["id"]), (200, &first.body["id"]), "{}", again.body);
    let plain = json!({"body": "归档前", "client_key": "0193f2c1-retry-4"});
    let first = owner.post(&path, plain.clone()).await;
    assert_eq!(owner.post_empty(&format!("/api/v1/conversations/{c}/archive")).await.status, 200);
    let again = owner.post(&path, plain).await;
    assert_eq!((again.status, &again.body["id"]), (200, &first.body["id"]), "{}", again.body);
    // A new send there is still refused.
    assert_error(&owner.post(&path, json!({"body": "new", "client_key": "0193f2c1-retry-5"})).await, 403, "forbidden");
}

/// Retries queued in the same group commit as their first attempt (a busy writer, a client
/// that timed out and sent again) get that message, never a 409.
#[tokio::test]
async fn retries_batched_with_their_first_attempt_get_it() {
    let srv = TestServer::start_with(qiao_store::testing::TestDb::sqlite(), |c| c.message_burst = 10_000.0).await;
    let owner = srv.owner().await;
    let c = channel(&owner, "public", "General", &[]).await;
    let path = format!("/api/v1/conversations/{c}/messages");
    for round in 0..8 {
        // Other sends keep the writer busy so that the attempts queue up together.
        let mut requests = Vec::new();
        for i in 0..48 {
            let key = if i % 12 == 5 { format!("retry-{round}") } else { format!("other-{round}-{i}") };
            let (owner, path) = (owner.clone(), path.clone());
            requests.push(tokio::spawn(async move {
                (i % 12 == 5, owner.post(&path, json!({"body": format!("第{round}轮"), "client_key": key})).await)
            }));
        }
        let mut ids = std::collections::HashSet::new();
        for r in requests {
            let (retry, r) = r.await.unwrap();
            assert!(r.status == 201 || retry && r.status == 200, "{} {}", r.status, r.body);
            if retry {
                ids.insert(r.body["id"].as_str().unwrap().to_owned());
            }
        }
        assert_eq!(ids.len(), 1, "one message per key");
    }
}

#[tokio::test]
async fn concurrent_senders_share_one_gap_free_order() {
    let srv = TestServer::start_with(qiao_store::testing::TestDb::sqlite(), |c| c.message_burst = 1000.0).await;
    let owner = srv.owner().await;
    let mut clients = vec![owner.clone()];
    let mut ids = Vec::new();
    for i in 0..4 {
        let (id, api) = owner.create_user(&srv, &format!("sender{i}"), "member", None).await;
        ids.push(id);
        clients.push(api);
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let c = channel(&owner, "private", "Busy", &refs).await;
    let start =
        owner.get(&format!("/api/v1/conversations/{c}")).await.body["conversation"]["last_seq"].as_i64().unwrap();

    let mut tasks = Vec::new();
    for (n, api) in clients.iter().enumerate() {
        let (api, c) = (api.clone(), c.clone());
        tasks.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            for i in 0..25 {
                let m = send(
                    &api,
                    &c,
                    json!({"body": format!("client {n} message {i}"), "client_key": format!("k-{n}-{i}")}),
                )
                .await;
                sent.push((m["seq"].as_i64().unwrap(), m["id"].as_str().unwrap().to_owned(), i));
            }
            sent
        }));
    }
    let mut all = Vec::new();
    for (n, t) in tasks.into_iter().enumerate() {
        let sent = t.await.unwrap();
        // Each client's own messages are in the order it sent them.
        assert!(sent.windows(2).all(|w| w[0].0 < w[1].0), "client {n} out of order");
        all.extend(sent);
    }
    let seqs: HashSet<i64> = all.iter().map(|(s, _, _)| *s).collect();
    assert_eq!(seqs.len(), 125, "every message has its own sequence number");
    assert_eq!(seqs, ((start + 1)..=(start + 125)).collect::<HashSet<i64>>(), "and they are gap-free");
    // Everyone reads the same order back.
    let mut history: Vec<(i64, String)> = Vec::new();
    let mut after = start;
    loop {
        let page = clients[2].get(&format!("/api/v1/conversations/{c}/messages?after={after}&limit=40")).await.body;
        for m in page["items"].as_array().unwrap() {
            history.push((m["seq"].as_i64().unwrap(), m["id"].as_str().unwrap().to_owned()));
        }
        after = history.last().unwrap().0;
        if !page["more_after"].as_bool().unwrap() {
            break;
        }
    }
    let mut expected: Vec<(i64, String)> = all.into_iter().map(|(s, id, _)| (s, id)).collect();
    expected.sort();
    assert_eq!(history, expected);
}

#[tokio::test]
async fn threads_edits_and_deletes() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let (alice_id, alice) = owner.create_user(&srv, "alice", "member", None).await;
    let (bob_id, bob) = owner.create_user(&srv, "bob", "member", None).await;
    let c = channel(&alice, "public", "Design", &[&bob_id]).await;
    let root = send(&alice, &c, json!({"body": "方案评审？"})).await;
    let root_id = root["id"].as_str().unwrap().to_owned();
    let r1 = send(&bob, &c, json!({"body": "周三可以", "thread_root_id": root_id})).await;
    let r1_id = r1["id"].as_str().unwrap().to_owned();
    // Replying to a reply continues the same thread.
    let r2 = send(&alice, &c, json!({"body": "好的", "thread_root_id": r1_id})).await;
    assert_eq!(r2["thread_root_id"], root_id.as_str());

    let root_now = alice.get(&format!("/api/v1/messages/{root_id}")).await.body;
    assert_eq!(root_now["thread"]["reply_count"], 2);
    let mut participants: Vec<String> = root_now["thread"]["participant_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    participants.sort();
    let mut expect = vec![alice_id.clone(), bob_id.clone()];
    expect.sort();
    assert_eq!(participants, expect);
    // Replies stay out of the channel's history and in the thread.
    let top = alice.get(&format!("/api/v1/conversations/{c}/messages")).await.body;
    assert_eq!(top["items"].as_array().unwrap().len(), 1);
    let thread = bob.get(&format!("/api/v1/messages/{root_id}/thread")).await.body;
    assert_eq!(thread["root"]["id"], root_id.as_str());
    assert_eq!(
        thread["items"].as_array().unwrap().iter().map(|m| m["body"].clone()).collect::<Vec<_>>(),
        vec![json!("周三可以"), json!("好的")]
    );

    // Edit the root after the replies: marked edited, replies untouched.
    assert_error(&bob.patch(&format!("/api/v1/messages/{root_id}"), json!({"body": "hijack"})).await, 403, "forbidden");
    let edited =
        alice.patch(&format!("/api/v1/messages/{root_id}"), json!({"body": "方案评审（改到周三）"})).await.body;
    assert!(edited["edited_at"].is_i64());
    assert_eq!(edited["thread"]["reply_count"], 2);
    // Earlier versions are for administrators only.
    assert_error(&alice.get(&format!("/api/v1/messages/{root_id}/edits")).await, 403, "forbidden");
    // Delete the root: a tombstone; the thread and its replies remain.
    assert_eq!(alice.delete(&format!("/api/v1/messages/{root_id}")).await.status, 204);
    let dead = bob.get(&format!("/api/v1/messages/{root_id}")).await.body;
    assert_eq!((dead["body"].as_str(), dead["deleted_at"].is_i64()), (Some(""), true));
    assert_eq!(bob.get(&format!("/api/v1/messages/{root_id}/thread")).await.body["items"].as_array().unwrap().len(), 2);
    assert_error(
        &alice.patch(&format!("/api/v1/messages/{root_id}"), json!({"body": "revive"})).await,
        409,
        "conflict",
    );
    assert_error(
        &bob.post(&format!("/api/v1/conversations/{c}/messages"), json!({"body": "late", "thread_root_id": root_id}))
            .await,
        422,
        "invalid_input",
    );
    // Delete a reply: other members may not, its author may, and deleting twice is harmless.
    let r2_id = r2["id"].as_str().unwrap().to_owned();
    assert_error(&bob.delete(&format!("/api/v1/messages/{r2_id}")).await, 403, "forbidden");
    assert_eq!(bob.delete(&format!("/api/v1/messages/{r1_id}")).await.status, 204);
    assert_eq!(bob.delete(&format!("/api/v1/messages/{r1_id}")).await.status, 204);
    let thread = alice.get(&format!("/api/v1/messages/{root_id}/thread")).await.body;
    assert!(thread["items"][0]["deleted_at"].is_i64());
    assert_eq!(thread["items"][1]["body"], "好的");
    // The thread's summary counts the replies left, and who wrote them.
    let summary = &thread["root"]["thread"];
    assert_eq!(summary["reply_count"], 1, "{summary}");
    assert_eq!(summary["participant_ids"], json!([alice_id]));
    assert_eq!(summary["last_reply_at"], r2["created_at"]);
    assert_eq!(alice.delete(&format!("/api/v1/messages/{r2_id}")).await.status, 204);
    // With no reply left, the root has no thread summary, as before its first reply.
    let root_now = alice.get(&format!("/api/v1/messages/{root_id}")).await.body;
    assert!(root_now["thread"].is_null(), "{root_now}");
}

#[tokio::test]
async fn reactions_pins_and_moderation() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let (bob_id, bob) = owner.create_user(&srv, "bob", "member", None).await;
    let c = channel(&owner, "public", "Fun", &[&bob_id]).await;
    let m = send(&bob, &c, json!({"body": "lunch?"})).await;
    let mid = m["id"].as_str().unwrap().to_owned();
    let add = owner.post(&format!("/api/v1/messages/{mid}/reactions"), json!({"emoji": "👍"})).await.body;
    assert_eq!(add["added"], true);
    bob.post(&format!("/api/v1/messages/{mid}/reactions"), json!({"emoji": "👍"})).await;
    let both = bob.post(&format!("/api/v1/messages/{mid}/reactions"), json!({"emoji": ":tada:"})).await.body;
    assert_eq!(both["message"]["reactions"][0]["count"], 2);
    let removed = owner.post(&format!("/api/v1/messages/{mid}/reactions"), json!({"emoji": "👍"})).await.body;
    assert_eq!(removed["added"], false);
    assert_eq!(removed["message"]["reactions"][0]["count"], 1);
    // Saying what is wanted makes a retry harmless: twice added is added once, twice taken
    // back is taken back once.
    let reactions = format!("/api/v1/messages/{mid}/reactions");
    for _ in 0..2 {
        let r = owner.post(&reactions, json!({"emoji": "👍", "add": true})).await.body;
        assert_eq!((r["added"].clone(), r["message"]["reactions"][0]["count"].clone()), (json!(true), json!(2)));
    }
    for _ in 0..2 {
        let r = owner.post(&reactions, json!({"emoji": "👍", "add": false})).await.body;
        assert_eq!((r["added"].clone(), r["message"]["reactions"][0]["count"].clone()), (json!(false), json!(1)));
    }
    assert_error(
        &owner.post(&format!("/api/v1/messages/{mid}/reactions"), json!({"emoji": "not an emoji"})).await,
        422,
        "invalid_input",
    );

    assert!(bob.put_empty(&format!("/api/v1/messages/{mid}/pin")).await.body["pinned_at"].is_i64());
    assert_eq!(owner.get(&format!("/api/v1/conversations/{c}/pins")).await.body["items"].as_array().unwrap().len(), 1);
    assert!(owner.delete(&format!("/api/v1/messages/{mid}/pin")).await.body["pinned_at"].is_null());

    // A channel admin may delete someone else's message; it is audited.
    assert_eq!(owner.delete(&format!("/api/v1/messages/{mid}")).await.status, 204);
    let log = owner.get("/api/v1/audit").await.body;
    assert!(log["items"].as_array().unwrap().iter().any(|e| e["action"] == "message.delete_other"));
    let other = send(&owner, &c, json!({"body": "mine"})).await;
    assert_error(&bob.delete(&format!("/api/v1/messages/{}", other["id"].as_str().unwrap())).await, 403, "forbidden");
}

#[tokio::test]
async fn mentions_unread_counts_and_read_positions() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let eng = owner.create_department("Eng", None).await;
    let (alice_id, alice) = owner.create_user(&srv, "alice", "member", Some(&eng)).await;
    let (bob_id, bob) = owner.create_user(&srv, "bob", "member", None).await;
    let c = channel(&alice, "public", "Team", &[&bob_id]).await;
    let c2 = bob.clone();

    send(&alice, &c, json!({"body": "hello all"})).await;
    let m2 = send(&alice, &c, json!({"body": "@bob please review"})).await;
    assert_eq!(m2["mentions"]["user_ids"], json!([bob_id]));
    let m3 = send(&alice, &c, json!({"body": format!("<@{bob_id}> and <@&{eng}> and `@bob` in code")})).await;
    assert_eq!(m3["mentions"]["department_ids"], json!([eng]));
    // `@channel` is plain text for a member; the channel's admin may use it.
    let plain = send(&bob, &c, json!({"body": "@channel hey"})).await;
    assert_eq!(plain["mentions"]["channel"], false);
    // Naming bob besides everyone still counts as one mention of him.
    let loud = send(&alice, &c, json!({"body": "@channel @bob 开会了"})).await;
    assert_eq!(
        (loud["mentions"]["channel"].clone(), loud["mentions"]["user_ids"].clone()),
        (json!(true), json!([bob_id]))
    );

    let state = my_state(&bob, &c).await;
    assert_eq!((state["unread_count"].as_i64(), state["mention_count"].as_i64()), (Some(4), Some(3)), "{state}");
    let listed = c2.get("/api/v1/conversations").await.body;
    let item =
        listed["items"].as_array().unwrap().iter().find(|i| i["conversation"]["id"] == c.as_str()).unwrap().clone();
    assert_eq!(item["me"]["unread_count"], 4);

    // Reading up to m2 on one device clears those for every device.
    let phone = srv.sign_in("bob", "bob-password").await;
    let r = bob.post(&format!("/api/v1/conversations/{c}/read"), json!({"seq": m2["seq"]})).await;
    assert_eq!(r.body["read_seq"], m2["seq"]);
    let state = my_state(&phone, &c).await;
    assert_eq!((state["unread_count"].as_i64(), state["mention_count"].as_i64()), (Some(2), Some(2)));
    // Read positions never move back by accident…
    let r = phone.post(&format!("/api/v1/conversations/{c}/read"), json!({"seq": 1})).await;
    assert_eq!(r.body["read_seq"], m2["seq"]);
    // …only on purpose: "mark unread from here".
    let r = phone.post(&format!("/api/v1/conversations/{c}/unread"), json!({"message_id": m2["id"]})).await;
    assert_eq!(r.body["read_seq"], m2["seq"].as_i64().unwrap() - 1);
    assert_eq!(my_state(&bob, &c).await["unread_count"], 3);
    let r = bob.post(&format!("/api/v1/conversations/{c}/read"), json!({})).await;
    let state = my_state(&bob, &c).await;
    assert_eq!((state["unread_count"].as_i64(), state["mention_count"].as_i64()), (Some(0), Some(0)));
    assert_eq!(state["read_seq"], r.body["read_seq"]);
    // Own messages never count as unread.
    assert_eq!(my_state(&alice, &c).await["unread_count"], 1, "only Bob's one message is unread for Alice");
    let _ = alice_id;
}

/// Guests do not see the organisation: their department mentions stay plain text, as
/// `@channel` does, and notify nobody.
#[tokio::test]
async fn a_guest_cannot_mention_a_department() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let eng = owner.create_department("Eng", None).await;
    let (alice_id, alice) = owner.create_user(&srv, "alice", "member", Some(&eng)).await;
    let (guest_id, guest) = owner.create_user(&srv, "partner", "guest", None).await;
    let c = channel(&owner, "private", "Supplier room", &[&alice_id, &guest_id]).await;
    let m = send(&guest, &c, json!({"body": format!("<@&{eng}> 请确认 and <@{alice_id}>")})).await;
    assert_eq!(m["mentions"]["department_ids"], json!([]), "{m}");
    assert_eq!(m["mentions"]["user_ids"], json!([alice_id]));
    let plain = send(&guest, &c, json!({"body": format!("<@&{eng}> only")})).await;
    assert_eq!(plain["mentions"]["department_ids"], json!([]), "{plain}");
    let state = my_state(&alice, &c).await;
    assert_eq!((state["unread_count"].as_i64(), state["mention_count"].as_i64()), (Some(2), Some(1)), "{state}");
    // A member's department mention still reaches the department.
    let m = send(&owner, &c, json!({"body": format!("<@&{eng}> 请确认")})).await;
    assert_eq!(m["mentions"]["department_ids"], json!([eng]));
    assert_eq!(my_state(&alice, &c).await["mention_count"], 2);
}

#[tokio::test]
async fn history_pages_both_ways_and_jumps_to_a_message() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let c = channel(&owner, "public", "Log", &[]).await;
    let mut sent = Vec::new();
    for i in 0..30 {
        sent.push(send(&owner, &c, json!({"body": format!("line {i}")})).await);
    }
    let bodies = |v: &Value| {
        v["items"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    let latest = owner.get(&format!("/api/v1/conversations/{c}/messages?limit=10")).await.body;
    assert_eq!(bodies(&latest).first().map(String::as_str), Some("line 20"));
    assert_eq!((latest["more_before"].as_bool(), latest["more_after"].as_bool()), (Some(true), Some(false)));
    let first_seq = latest["items"][0]["seq"].as_i64().unwrap();
    let older = owner.get(&format!("/api/v1/conversations/{c}/messages?before={first_seq}&limit=10")).await.body;
    assert_eq!(bodies(&older).last().map(String::as_str), Some("line 19"));
    let target = sent[5]["id"].as_str().unwrap();
    let around = owner.get(&format!("/api/v1/conversations/{c}/messages?around={target}&limit=5")).await.body;
    assert_eq!(bodies(&around), vec!["line 3", "line 4", "line 5", "line 6", "line 7"]);
    let r = owner.get(&format!("/api/v1/conversations/{c}/messages?before=5&after=1")).await;
    assert_error(&r, 400, "invalid_parameter");
    assert_eq!(r.body["field"], "after");
    // Edges anywhere in the range of sequence numbers, never below it.
    for (query, items) in [("before=9223372036854775807", 10), ("after=9223372036854775807", 0), ("after=0", 10)] {
        let page = owner.get(&format!("/api/v1/conversations/{c}/messages?{query}&limit=10")).await;
        assert_eq!((page.status, page.body["items"].as_array().map(Vec::len)), (200, Some(items)), "{query}");
        let thread = owner.get(&format!("/api/v1/messages/{target}/thread?{query}")).await;
        assert_eq!(thread.status, 200, "{query}: {}", thread.body);
    }
    for query in ["before=-1", "after=-9223372036854775808"] {
        let r = owner.get(&format!("/api/v1/conversations/{c}/messages?{query}")).await;
        assert_error(&r, 400, "invalid_parameter");
        assert_error(&owner.get(&format!("/api/v1/messages/{target}/thread?{query}")).await, 400, "invalid_parameter");
    }
    let other = channel(&owner, "public", "Other", &[]).await;
    assert_error(
        &owner.get(&format!("/api/v1/conversations/{other}/messages?around={target}")).await,
        404,
        "not_found",
    );
    // Bodies are validated.
    let r = owner.post(&format!("/api/v1/conversations/{c}/messages"), json!({"body": "   "})).await;
    assert_error(&r, 422, "invalid_input");
    let r = owner.post(&format!("/api/v1/conversations/{c}/messages"), json!({"body": "长".repeat(10_001)})).await;
    assert_error(&r, 422, "invalid_input");
    assert!(r.body["message"].as_str().unwrap().contains("10000"));
}

#[tokio::test]
async fn sending_too_fast_is_limited() {
    let srv = TestServer::start_with(qiao_store::testing::TestDb::sqlite(), |c| {
        // Next to no refill, so that nothing depends on timing.
        c.message_burst = 5.0;
        c.message_rate_per_second = 0.001;
    })
    .await;
    let owner = srv.owner().await;
    let c = channel(&owner, "public", "Spam", &[]).await;
    for i in 0..5 {
        send(&owner, &c, json!({"body": format!("{i}")})).await;
    }
    let r = owner.post(&format!("/api/v1/conversations/{c}/messages"), json!({"body": "one too many"})).await;
    assert_error(&r, 429, "rate_limited");
    assert!(r.headers.contains_key("retry-after"));
    // Edits share the budget: each is a new version and an event to every member.
    let first = owner.get(&format!("/api/v1/conversations/{c}/messages?limit=1")).await.body["items"][0]["id"].clone();
    let r = owner.patch(&format!("/api/v1/messages/{}", first.as_str().unwrap()), json!({"body": "edited"})).await;
    assert_error(&r, 429, "rate_limited");
}

/// Writes without a budget of their own share one per person (here bursts of 10 and next to
/// no refill, so that nothing depends on timing); admins creating the organisation's channels
/// are not held to it; asking for what is so already writes nothing.
#[tokio::test]
async fn repeatable_writes_have_a_budget() {
    let srv = TestServer::start_with(qiao_store::testing::TestDb::sqlite(), |c| {
        (c.action_burst, c.action_rate_per_second) = (10.0, 0.001);
        (c.search_burst, c.search_rate_per_second) = (20.0, 0.001);
    })
    .await;
    let owner = srv.owner().await;
    let (_, bob) = owner.create_user(&srv, "bob", "member", None).await;
    let mut created = 0;
    let refused = loop {
        let r = bob.post("/api/v1/conversations", json!({"name": format!("频道 {created}")})).await;
        if r.status != 201 {
            break r;
        }
        created += 1;
        assert!(created <= 200, "never refused");
    };
    assert_error(&refused, 429, "rate_limited");
    assert!(refused.headers.contains_key("retry-after"));
    assert_eq!(created, 10, "the burst");
    // The same budget covers following threads, joining and leaving.
    let owner_id = owner.get("/api/v1/me").await.body["user"]["id"].clone();
    let bob_id = bob.get("/api/v1/me").await.body["user"]["id"].clone();
    let c = channel(&owner, "public", "Shared", &[bob_id.as_str().unwrap()]).await;
    let root = send(&owner, &c, json!({"body": "a thread"})).await["id"].as_str().unwrap().to_owned();
    assert_error(&bob.put_empty(&format!("/api/v1/messages/{root}/thread/follow")).await, 429, "rate_limited");
    assert_error(&bob.post_empty(&format!("/api/v1/conversations/{c}/leave")).await, 429, "rate_limited");
    let open = channel(&owner, "public", "Open", &[]).await;
    assert_error(&bob.post_empty(&format!("/api/v1/conversations/{open}/join")).await, 429, "rate_limited");
    // And starting a DM (opening one that exists is free).
    assert_error(&bob.post("/api/v1/conversations/dm", json!({"user_id": owner_id})).await, 429, "rate_limited");
    assert_eq!(owner.post("/api/v1/conversations/dm", json!({"user_id": bob_id})).await.status, 201);
    assert_eq!(bob.post("/api/v1/conversations/dm", json!({"user_id": owner_id})).await.status, 200);
    // Not the owner's.
    assert_eq!(owner.post("/api/v1/conversations", json!({"name": "Owner's"})).await.status, 201);

    // Nothing to change: no write, no audit entry, no budget spent.
    let entries = |log: Value| log["items"].as_array().unwrap().len();
    let before = entries(owner.get("/api/v1/audit?limit=200").await.body);
    let me = owner.get("/api/v1/me").await.body["user"].clone();
    for _ in 0..3 {
        let r = owner.patch("/api/v1/me", json!({"display_name": me["display_name"], "title": me["title"]})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(owner.patch("/api/v1/me", json!({})).await.status, 200);
    }
    assert_eq!(entries(owner.get("/api/v1/audit?limit=200").await.body), before);
    for _ in 0..2 {
        assert_eq!(owner.put_empty(&format!("/api/v1/messages/{root}/thread/follow")).await.status, 200);
    }
    // Bob, his budget spent, manages a group DM: changing nothing costs nothing.
    let (carol_id, _) = owner.create_user(&srv, "carol", "member", None).await;
    let r = owner.post("/api/v1/conversations/group", json!({"user_ids": [bob_id, carol_id], "name": "三人组"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let group = r.body["conversation"]["id"].as_str().unwrap().to_owned();
    let before = bob.get(&format!("/api/v1/conversations/{group}")).await.body["conversation"].clone();
    for patch in [json!({}), json!({"name": before["name"], "topic": before["topic"]})] {
        let r = bob.patch(&format!("/api/v1/conversations/{group}"), patch).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    assert_eq!(bob.get(&format!("/api/v1/conversations/{group}")).await.body["conversation"], before, "not written");
    assert_error(
        &bob.patch(&format!("/api/v1/conversations/{group}"), json!({"topic": "新"})).await,
        429,
        "rate_limited",
    );

    // Searches have their own budget.
    let mut searched = 0;
    let refused = loop {
        let r = owner.get("/api/v1/search?q=thread").await;
        if r.status != 200 {
            break r;
        }
        searched += 1;
        assert!(searched <= 100, "never refused");
    };
    assert_error(&refused, 429, "rate_limited");
    assert_eq!(searched, 20);
}

#[tokio::test]
async fn threads_can_be_followed_and_read() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let (bob_id, bob) = owner.create_user(&srv, "bob", "member", None).await;
    let c = channel(&owner, "public", "Q&A", &[&bob_id]).await;
    let root = send(&owner, &c, json!({"body": "question"})).await;
    let rid = root["id"].as_str().unwrap().to_owned();
    send(&bob, &c, json!({"body": "answer 1", "thread_root_id": rid})).await;
    // The root's author follows the thread once it has replies.
    let threads = owner.get("/api/v1/threads").await.body;
    assert_eq!(threads["items"][0]["root_id"], rid.as_str());
    assert_eq!(threads["items"][0]["root"]["body"], "question", "with its first message, to show");
    assert_eq!(threads["items"][0]["unread_count"], 1);
    let st = owner.post(&format!("/api/v1/messages/{rid}/thread/read"), json!({})).await.body;
    assert_eq!(st["following"], true);
    assert_eq!(owner.get("/api/v1/threads").await.body["items"][0]["unread_count"], 0);
    assert_eq!(owner.delete(&format!("/api/v1/messages/{rid}/thread/follow")).await.body["following"], false);
    assert!(owner.get("/api/v1/threads").await.body["items"].as_array().unwrap().is_empty());
    assert_eq!(owner.put_empty(&format!("/api/v1/messages/{rid}/thread/follow")).await.body["following"], true);
    // Leaving forgets the threads followed there: rejoining starts afresh, as the channel does.
    assert_eq!(bob.get("/api/v1/threads").await.body["items"][0]["root_id"], rid.as_str());
    assert_eq!(bob.post_empty(&format!("/api/v1/conversations/{c}/leave")).await.status, 204);
    send(&owner, &c, json!({"body": "answer 2", "thread_root_id": rid})).await;
    assert_eq!(bob.post_empty(&format!("/api/v1/conversations/{c}/join")).await.status, 200);
    assert!(bob.get("/api/v1/threads").await.body["items"].as_array().unwrap().is_empty());
    // Mentioned in a reply by an edit, as by a send: the thread is followed.
    let (_, carol) = owner.create_user(&srv, "carol", "member", None).await;
    assert_eq!(carol.post_empty(&format!("/api/v1/conversations/{c}/join")).await.status, 200);
    let reply = send(&owner, &c, json!({"body": "answer 3", "thread_root_id": rid})).await;
    assert!(carol.get("/api/v1/threads").await.body["items"].as_array().unwrap().is_empty());
    let r = owner
        .patch(&format!("/api/v1/messages/{}", reply["id"].as_str().unwrap()), json!({"body": "@carol answer 3?"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let threads = carol.get("/api/v1/threads").await.body;
    assert_eq!(threads["items"][0]["root_id"], rid.as_str(), "{threads}");
    assert_eq!(threads["items"][0]["mention_count"], 1, "{threads}");
    // Only a new mention does: fixing a typo after carol unfollowed leaves her unfollowed.
    assert_eq!(carol.delete(&format!("/api/v1/messages/{rid}/thread/follow")).await.status, 200);
    let r = owner
        .patch(&format!("/api/v1/messages/{}", reply["id"].as_str().unwrap()), json!({"body": "@carol answer 3!"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(carol.get("/api/v1/threads").await.body["items"].as_array().unwrap().is_empty());

    // A page at a time: `next_cursor` goes on to older threads until there are none.
    for i in 0..4 {
        let r = send(&owner, &c, json!({"body": format!("topic {i}")})).await;
        let id = r["id"].as_str().unwrap();
        assert_eq!(carol.put_empty(&format!("/api/v1/messages/{id}/thread/follow")).await.status, 200);
    }
    let (mut seen, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/threads?limit=3&cursor={c}"),
            None => "/api/v1/threads?limit=3".to_owned(),
        };
        let page = carol.get(&path).await.body;
        seen.extend(page["items"].as_array().unwrap().iter().map(|t| t["root"]["body"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["topic 3", "topic 2", "topic 1", "topic 0"], "newest first, each once");
    assert_error(&carol.get("/api/v1/threads?cursor=nonsense").await, 400, "invalid_parameter");
}

/// `@channel` in a thread reply is addressed to those in the thread: it counts as a mention
/// for everyone following it (not the author, not the rest of the channel), by a send or an
/// edit, from the first reply (whose thread the root's author follows from then).
#[tokio::test]
async fn channel_in_a_thread_reply_mentions_those_following_it() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let (bob_id, bob) = owner.create_user(&srv, "bob", "member", None).await;
    let (carol_id, carol) = owner.create_user(&srv, "carol", "member", None).await;
    let c = channel(&owner, "public", "Thread alarm", &[&bob_id, &carol_id]).await;
    let rid = send(&bob, &c, json!({"body": "plan"})).await["id"].as_str().unwrap().to_owned();
    let mention_count = |threads: Value| threads["items"][0]["mention_count"].clone();
    let loud = send(&owner, &c, json!({"body": "@channel decided", "thread_root_id": rid})).await;
    assert_eq!(loud["mentions"]["channel"], true);
    assert_eq!(mention_count(bob.get("/api/v1/threads").await.body), 1, "the root's author");
    assert_eq!(mention_count(owner.get("/api/v1/threads").await.body), 0, "not the reply's author");
    assert!(carol.get("/api/v1/threads").await.body["items"].as_array().unwrap().is_empty(), "not following");
    assert_eq!(my_state(&carol, &c).await["mention_count"], 0, "the channel's counts ignore replies");
    // An edit that adds it counts, one that takes it back does not.
    let quiet = send(&owner, &c, json!({"body": "noted", "thread_root_id": rid})).await;
    let path = format!("/api/v1/messages/{}", quiet["id"].as_str().unwrap());
    assert_eq!(owner.patch(&path, json!({"body": "@channel noted"})).await.status, 200);
    assert_eq!(mention_count(bob.get("/api/v1/threads").await.body), 2);
    assert_eq!(owner.patch(&path, json!({"body": "noted!"})).await.status, 200);
    assert_eq!(mention_count(bob.get("/api/v1/threads").await.body), 1);
    // A member's `@channel` stays plain text there too.
    send(&bob, &c, json!({"body": "@channel me too", "thread_root_id": rid})).await;
    assert_eq!(mention_count(owner.get("/api/v1/threads").await.body), 0);
    // Brought into the thread by a mention, carol has that reply unread, not the ones (and
    // the `@channel`) from before her time — here after she had read them and unfollowed.
    assert_eq!(carol.put_empty(&format!("/api/v1/messages/{rid}/thread/follow")).await.status, 200);
    assert_eq!(carol.delete(&format!("/api/v1/messages/{rid}/thread/follow")).await.status, 200);
    send(&owner, &c, json!({"body": "@carol please check", "thread_root_id": rid})).await;
    let threads = carol.get("/api/v1/threads").await.body;
    assert_eq!(
        (threads["items"][0]["unread_count"].as_i64(), mention_count(threads.clone()).as_i64()),
        (Some(1), Some(1)),
        "{threads}"
    );
}

#[tokio::test]
async fn a_message_keeps_a_bounded_history_of_edits() {
    let srv = TestServer::start_with(qiao_store::testing::TestDb::sqlite(), |c| {
        (c.message_burst, c.message_rate_per_second) = (1e6, 1e6);
    })
    .await;
    let owner = srv.owner().await;
    let c = channel(&owner, "public", "Edits", &[]).await;
    let id = send(&owner, &c, json!({"body": "v0"})).await["id"].as_str().unwrap().to_owned();
    for i in 1..=qiao_service::messages::EDITS_MAX {
        let r = owner.patch(&format!("/api/v1/messages/{id}"), json!({"body": format!("v{i}")})).await;
        assert_eq!(r.status, 200, "edit {i}: {}", r.body);
    }
    let r = owner.patch(&format!("/api/v1/messages/{id}"), json!({"body": "one more"})).await;
    assert_error(&r, 409, "conflict");
    assert!(r.body["message"].as_str().unwrap().contains("send a new message"), "{}", r.body);
}
