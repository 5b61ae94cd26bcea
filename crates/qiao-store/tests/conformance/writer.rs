//! The group-commit writer: order, isolation of failures, shutdown.

use std::collections::HashSet;

use qiao_domain::event::{Audience, EventData};
use qiao_domain::{DepartmentId, Error, ErrorCode};
use qiao_store::{Store, events};

use crate::{Sink, T0};

/// Many concurrent writers: every event gets a distinct position, positions are 1..=n with
/// no gaps, and the sink sees them in order.
pub async fn positions_are_gap_free_under_concurrency(store: Store, sink: Sink) {
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .write(move |tx| {
                    Box::pin(async move {
                        let data = EventData::DepartmentDeleted { department_id: DepartmentId::new() };
                        tx.append_event(Audience::Staff, None, &data, T0 + i).await
                    })
                })
                .await
                .unwrap()
        }));
    }
    let mut positions = HashSet::new();
    for t in tasks {
        assert!(positions.insert(t.await.unwrap()), "duplicate position");
    }
    assert_eq!(positions, (1..=200).collect::<HashSet<i64>>());
    let published: Vec<i64> = sink.take().into_iter().map(|e| e.pos).collect();
    assert_eq!(published, (1..=200).collect::<Vec<i64>>(), "published in order, exactly once");
    let mut r = store.reader().await.unwrap();
    assert_eq!(events::head(&mut r).await.unwrap(), 200);
    drop(r);

    // One transaction logging more events than one insert statement holds.
    let last = store
        .write(|tx| {
            Box::pin(async move {
                let mut last = 0;
                for i in 0..130 {
                    let data = EventData::DepartmentDeleted { department_id: DepartmentId::new() };
                    last = tx.append_event(Audience::Staff, None, &data, T0 + i).await?;
                }
                Ok(last)
            })
        })
        .await
        .unwrap();
    assert_eq!(last, 330);
    let published: Vec<i64> = sink.take().into_iter().map(|e| e.pos).collect();
    assert_eq!(published, (201..=330).collect::<Vec<i64>>());
    let mut r = store.reader().await.unwrap();
    assert_eq!(events::head(&mut r).await.unwrap(), 330);
    let logged = events::range(&mut r, 200, 1000).await.unwrap();
    assert_eq!(logged.iter().map(|e| e.pos).collect::<Vec<_>>(), (201..=330).collect::<Vec<i64>>());
}

/// A failure while the log is written at commit (here a row already at the position the
/// batch's event takes) fails the batch as a whole: nothing of it stays, nothing is
/// published, the head does not move, and the next write commits normally.
pub async fn a_failed_commit_leaves_nothing_behind(store: Store, sink: Sink) {
    let before = events::head(&mut store.reader().await.unwrap()).await.unwrap();
    let failed = store
        .write(move |tx| {
            Box::pin(async move {
                let taken = before + 1;
                let sql =
                    "INSERT INTO events (pos, audience, kind, frame, created_at) VALUES ($1, 'staff', 'x', '{}', 0)";
                match qiao_store::Db::conn(tx) {
                    qiao_store::Conn::Sqlite(c) => sqlx::query(sql).bind(taken).execute(c).await.map(drop),
                    qiao_store::Conn::Pg(c) => sqlx::query(sql).bind(taken).execute(c).await.map(drop),
                }
                .map_err(qiao_store::db_err)?;
                let data = EventData::DepartmentDeleted { department_id: DepartmentId::new() };
                tx.append_event(Audience::Staff, None, &data, T0).await
            })
        })
        .await;
    assert!(failed.is_err(), "the log insert at commit must fail: {failed:?}");
    assert!(sink.take().is_empty(), "nothing published");
    let mut r = store.reader().await.unwrap();
    assert_eq!(events::head(&mut r).await.unwrap(), before, "the head did not move");
    assert!(events::range(&mut r, before, 10).await.unwrap().is_empty(), "the stray row was rolled back");
    drop(r);
    let pos = store
        .write(|tx| {
            Box::pin(async move {
                let data = EventData::DepartmentDeleted { department_id: DepartmentId::new() };
                tx.append_event(Audience::Staff, None, &data, T0).await
            })
        })
        .await
        .unwrap();
    assert_eq!(pos, before + 1);
    assert_eq!(sink.take().into_iter().map(|e| e.pos).collect::<Vec<_>>(), vec![before + 1]);
}

/// A failing operation gets its own error; operations batched with it still commit, and its
/// events are never published.
pub async fn failed_operation_is_isolated(store: Store, sink: Sink) {
    let mut tasks = Vec::new();
    for i in 0..60i64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .write(move |tx| {
                    Box::pin(async move {
                        let data = EventData::DepartmentDeleted { department_id: DepartmentId::new() };
                        let pos = tx.append_event(Audience::Staff, None, &data, T0 + i).await?;
                        if i % 3 == 0 {
                            // Fails after writing: its event must vanish with it.
                            return Err(Error::new(ErrorCode::Conflict));
                        }
                        Ok(pos)
                    })
                })
                .await
        }));
    }
    let mut ok = 0;
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(i % 3, 0);
                assert_eq!(e.code, ErrorCode::Conflict);
            }
        }
    }
    assert_eq!(ok, 40);
    let published: Vec<i64> = sink.take().into_iter().map(|e| e.pos).collect();
    assert_eq!(published, (1..=40).collect::<Vec<i64>>());
    let mut r = store.reader().await.unwrap();
    assert_eq!(events::head(&mut r).await.unwrap(), 40);
    assert_eq!(events::range(&mut r, 0, 100).await.unwrap().len(), 40);
}

pub async fn closed_store_refuses_writes(store: Store, _: Sink) {
    store.ping().await.unwrap();
    store.close().await;
    let err = store.write(|_tx| Box::pin(async { Ok(()) })).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Unavailable);
    assert!(store.ping().await.is_err());
}

/// Plain sends queued together share one statement: each gets its conversation's next
/// number in queue order, non-members are refused, events follow in order, and a duplicate
/// idempotency key fails only its own send.
pub async fn grouped_sends_are_numbered_in_order(store: Store, sink: Sink) {
    use qiao_domain::conversation::{ConversationKind, MemberRole};
    use qiao_domain::message::Mentions;
    use qiao_domain::{MessageId, UserId};
    use qiao_store::members::new_member;
    use qiao_store::messages::NewMessage;
    use qiao_store::{members, messages};

    let root = crate::seed_org(&store).await;
    let alice = crate::users::insert(&store, crate::users::new_user("alice", "Alice", root.id)).await;
    let outsider = crate::users::insert(&store, crate::users::new_user("eve", "Eve", root.id)).await;
    let a = crate::messaging::create(&store, ConversationKind::Public, "a").await;
    let b = crate::messaging::create(&store, ConversationKind::Public, "b").await;
    store
        .write(move |tx| {
            Box::pin(async move {
                members::insert(tx, a, &new_member(alice.id, MemberRole::Member, true, false, T0), 0).await?;
                members::insert(tx, b, &new_member(alice.id, MemberRole::Member, true, false, T0), 0).await
            })
        })
        .await
        .unwrap();
    sink.take();
    let draft = |c, sender: UserId, key: &str| NewMessage {
        id: MessageId::new(),
        conversation_id: c,
        seq: 0,
        sender_id: sender,
        thread_root_id: None,
        body: format!("to {c}"),
        mentions: Mentions::default(),
        client_key: Some(key.to_owned()),
        at: T0,
    };
    // Queue 40 sends at once (alternating conversations, some from an outsider, one
    // reusing a key) so the writer takes them in few batches.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (c, sender, key) = match i {
            7 | 21 => (a, outsider.id, format!("k{i}")),
            30 => (b, alice.id, "k3".to_owned()),
            _ => (if i % 2 == 0 { a } else { b }, alice.id, format!("k{i}")),
        };
        let store = store.clone();
        let d = draft(c, sender, &key);
        tasks.push(tokio::spawn(async move { (i, store.send(d).await) }));
    }
    let mut by_conversation: std::collections::HashMap<_, Vec<i64>> = Default::default();
    for t in tasks {
        let (i, result) = t.await.unwrap();
        match i {
            7 | 21 => assert!(result.unwrap().is_none(), "outsiders cannot post"),
            30 => assert_eq!(result.unwrap_err().code, qiao_domain::ErrorCode::Conflict, "duplicate key"),
            _ => {
                let m = result.unwrap().unwrap();
                by_conversation.entry(m.conversation_id).or_default().push(m.seq);
            }
        }
    }
    for (c, mut seqs) in by_conversation {
        seqs.sort();
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "gap-free in {c}");
    }
    let published = sink.take();
    assert_eq!(published.len(), 37);
    assert!(published.windows(2).all(|w| w[0].pos + 1 == w[1].pos));
    let mut r = store.reader().await.unwrap();
    assert_eq!(qiao_store::conversations::get(&mut r, a).await.unwrap().unwrap().last_seq, 19);
    // The direct function: one statement for several rows.
    drop(r);
    let (d1, d2, d3) = (draft(a, alice.id, "x1"), draft(a, alice.id, "x2"), draft(b, outsider.id, "x3"));
    let got = store
        .write(move |tx| {
            let (d1, d2, d3) = (d1.clone(), d2.clone(), d3.clone());
            Box::pin(async move { messages::insert_many(tx, &[&d1, &d2, &d3]).await })
        })
        .await
        .unwrap();
    assert_eq!(got.iter().map(|m| m.as_ref().map(|m| m.seq)).collect::<Vec<_>>(), vec![Some(20), Some(21), None]);

    // More rows than one statement holds: numbered on across the statements.
    let many: Vec<NewMessage> = (0..150).map(|i| draft(a, alice.id, &format!("m{i}"))).collect();
    let got = store
        .write(move |tx| {
            let many = many.clone();
            Box::pin(async move { messages::insert_many(tx, &many.iter().collect::<Vec<_>>()).await })
        })
        .await
        .unwrap();
    assert_eq!(got.iter().map(|m| m.as_ref().unwrap().seq).collect::<Vec<_>>(), (22..=171).collect::<Vec<i64>>());
}

/// On PostgreSQL the writer's transactions cannot outlive a vanished node for long: the
/// server ends one left idle, releasing the stream head other nodes wait for.
pub async fn a_vanished_writer_cannot_hold_the_stream_head(store: Store, _: Sink) {
    if store.dialect() != qiao_store::Dialect::Postgres {
        return;
    }
    let timeout = store
        .write(|tx| {
            Box::pin(async move {
                let (v,): (String,) = match qiao_store::Db::conn(tx) {
                    qiao_store::Conn::Pg(c) => sqlx::query_as("SHOW idle_in_transaction_session_timeout")
                        .fetch_one(c)
                        .await
                        .map_err(qiao_store::db_err)?,
                    qiao_store::Conn::Sqlite(_) => unreachable!(),
                };
                Ok(v)
            })
        })
        .await
        .unwrap();
    assert_eq!(timeout, "10s");
}

/// Sends and other operations queued together: whichever comes first in a batch begins its
/// transaction (on SQLite a send's insert does), a send failing first in a batch (a reused
/// key) leaves the rest to commit, and positions stay gap-free.
pub async fn sends_and_operations_share_batches(store: Store, sink: Sink) {
    use qiao_domain::MessageId;
    use qiao_domain::conversation::{ConversationKind, MemberRole};
    use qiao_domain::message::Mentions;
    use qiao_store::members;
    use qiao_store::members::new_member;
    use qiao_store::messages::NewMessage;

    let root = crate::seed_org(&store).await;
    let alice = crate::users::insert(&store, crate::users::new_user("alice", "Alice", root.id)).await;
    let a = crate::messaging::create(&store, ConversationKind::Public, "a").await;
    store
        .write(move |tx| {
            Box::pin(async move {
                members::insert(tx, a, &new_member(alice.id, MemberRole::Member, true, false, T0), 0).await
            })
        })
        .await
        .unwrap();
    let taken = NewMessage {
        id: MessageId::new(),
        conversation_id: a,
        seq: 0,
        sender_id: alice.id,
        thread_root_id: None,
        body: "first".into(),
        mentions: Mentions::default(),
        client_key: Some("taken".into()),
        at: T0,
    };
    store.send(taken.clone()).await.unwrap().unwrap();
    sink.take();
    let mut sent = 0;
    let before = events::head(&mut store.reader().await.unwrap()).await.unwrap();
    for round in 0..4 {
        let mut tasks = Vec::new();
        for i in 0..30 {
            let (store, taken) = (store.clone(), taken.clone());
            tasks.push(tokio::spawn(async move {
                // Each round starts its burst differently: a reused key, a send, an operation.
                let reused = i == 0 && round % 2 == 0 || i == 17;
                if (i + round) % 3 == 0 && !reused {
                    let data = EventData::DepartmentDeleted { department_id: DepartmentId::new() };
                    let pos = store
                        .write(move |tx| {
                            let data = data.clone();
                            Box::pin(async move { tx.append_event(Audience::Staff, None, &data, T0).await })
                        })
                        .await;
                    (reused, pos.map(|_| false))
                } else {
                    let draft = NewMessage {
                        id: MessageId::new(),
                        client_key: Some(if reused { "taken".into() } else { format!("r{round}-{i}") }),
                        body: format!("m{i}"),
                        ..taken.clone()
                    };
                    (reused, store.send(draft).await.map(|m| m.is_some()))
                }
            }));
        }
        for t in tasks {
            let (reused, result) = t.await.unwrap();
            match (reused, result) {
                (true, result) => {
                    assert_eq!(result.unwrap_err().code, ErrorCode::Conflict, "the reused key fails alone")
                }
                (false, Ok(true)) => sent += 1,
                (false, result) => assert!(result.is_ok(), "{result:?}"),
            }
        }
    }
    let published: Vec<i64> = sink.take().into_iter().map(|e| e.pos).collect();
    let written = published.len() as i64;
    assert_eq!(published, (before + 1..=before + written).collect::<Vec<i64>>(), "gap-free, in order");
    let mut r = store.reader().await.unwrap();
    assert_eq!(events::head(&mut r).await.unwrap(), before + written);
    let last_seq = qiao_store::conversations::get(&mut r, a).await.unwrap().unwrap().last_seq;
    assert_eq!(last_seq, 1 + sent, "every send numbered, none twice");
}

/// `settled` returns only after the writes queued before it: a slow one still running is
/// committed (and published) by then.
pub async fn settled_waits_for_queued_writes(store: Store, sink: Sink) {
    let before = events::head(&mut store.reader().await.unwrap()).await.unwrap();
    let slow = hold_writer(&store, 200, true).await;
    store.settled().await.unwrap();
    assert_eq!(events::head(&mut store.reader().await.unwrap()).await.unwrap(), before + 1, "committed by then");
    assert_eq!(sink.take().len(), 1, "and published");
    slow.await.unwrap().unwrap();
}

/// Starts a write that keeps the writer busy for `ms` (appending an event if `event`), and
/// returns once the writer runs it.
async fn hold_writer(store: &Store, ms: u64, event: bool) -> tokio::task::JoinHandle<qiao_domain::Result<()>> {
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let started_tx = std::sync::Mutex::new(Some(started_tx));
    let store = store.clone();
    let slow = tokio::spawn(async move {
        store
            .write(move |tx| {
                if let Some(s) = started_tx.lock().unwrap().take() {
                    let _ = s.send(());
                }
                Box::pin(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                    if event {
                        let data = EventData::DepartmentDeleted { department_id: DepartmentId::new() };
                        tx.append_event(Audience::Staff, None, &data, T0).await?;
                    }
                    Ok(())
                })
            })
            .await
    });
    started.await.unwrap();
    slow
}

/// A write whose caller stopped waiting before the writer took it (a request that timed out
/// and was told to retry) is not made.
pub async fn abandoned_writes_are_not_made(store: Store, sink: Sink) {
    let before = events::head(&mut store.reader().await.unwrap()).await.unwrap();
    let append = |store: Store| async move {
        store
            .write(|tx| {
                Box::pin(async move {
                    let data = EventData::DepartmentDeleted { department_id: DepartmentId::new() };
                    tx.append_event(Audience::Staff, None, &data, T0).await
                })
            })
            .await
    };
    // Hold the writer, so that the next write waits in its queue.
    let slow = hold_writer(&store, 300, false).await;
    let gave_up = tokio::time::timeout(std::time::Duration::from_millis(50), append(store.clone())).await;
    assert!(gave_up.is_err(), "still queued behind the slow write");
    slow.await.unwrap().unwrap();
    store.settled().await.unwrap();
    assert_eq!(events::head(&mut store.reader().await.unwrap()).await.unwrap(), before, "nothing written");
    assert!(sink.take().is_empty());
    // A write still awaited is made as ever.
    assert_eq!(append(store.clone()).await.unwrap(), before + 1);
}

/// Writes queued behind a busy writer (so that it paces its next commit) are all made before
/// a close that came after them; a write after the close is refused.
pub async fn queued_writes_finish_before_a_close(store: Store, sink: Sink) {
    let before = events::head(&mut store.reader().await.unwrap()).await.unwrap();
    let slow = hold_writer(&store, 100, false).await;
    let queued: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(|tx| {
                        Box::pin(async move {
                            let data = EventData::DepartmentDeleted { department_id: DepartmentId::new() };
                            tx.append_event(Audience::Staff, None, &data, T0).await
                        })
                    })
                    .await
            })
        })
        .collect();
    // Let every write reach the queue before the close does.
    while store.queued_writes() < 20 {
        tokio::task::yield_now().await;
    }
    store.close().await;
    slow.await.unwrap().unwrap();
    let mut positions: Vec<i64> = Vec::new();
    for q in queued {
        positions.push(q.await.unwrap().unwrap());
    }
    positions.sort_unstable();
    assert_eq!(positions, (before + 1..=before + 20).collect::<Vec<_>>());
    assert_eq!(sink.take().len(), 20, "each published");
    let err = store.write(|_tx| Box::pin(async { Ok(()) })).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Unavailable);
}
