use qiao_domain::event::{Audience, EventData, EventFrame};
use qiao_domain::{DepartmentId, UserId};
use qiao_store::{Store, events};

use crate::messaging::{create, join};
use crate::users::{insert, new_user};
use crate::{Sink, T0, seed_org};

pub async fn log_reads_and_pruning(store: Store, sink: Sink) {
    let mut r = store.reader().await.unwrap();
    assert_eq!(events::head(&mut r).await.unwrap(), 0);
    assert_eq!(events::oldest(&mut r).await.unwrap(), None);
    drop(r);

    let user = UserId::new();
    let dept = DepartmentId::new();
    store
        .write(move |tx| {
            Box::pin(async move {
                tx.append_event(Audience::Staff, None, &EventData::DepartmentDeleted { department_id: dept }, T0)
                    .await?;
                tx.append_event(
                    Audience::User(user),
                    None,
                    &EventData::SessionRevoked { session_id: qiao_domain::SessionId::new() },
                    T0 + 10,
                )
                .await
            })
        })
        .await
        .unwrap();
    let published = sink.take();
    assert_eq!(published.iter().map(|e| e.pos).collect::<Vec<_>>(), vec![1, 2]);

    let mut r = store.reader().await.unwrap();
    assert_eq!(events::head(&mut r).await.unwrap(), 2);
    assert_eq!(events::oldest(&mut r).await.unwrap(), Some(1));
    let log = events::range(&mut r, 0, 10).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!((log[0].audience.as_str(), log[0].kind.as_str()), ("staff", "department.deleted"));
    assert_eq!((log[1].audience.as_str(), log[1].user_id), ("user", Some(user)));
    // The stored frame is byte-for-byte what was published live.
    assert_eq!(log[1].frame.as_bytes(), &published[1].frame[..]);
    let frame: EventFrame = serde_json::from_str(&log[0].frame).unwrap();
    assert_eq!(frame.data, EventData::DepartmentDeleted { department_id: dept });
    assert_eq!(events::range(&mut r, 1, 10).await.unwrap().len(), 1);
    assert_eq!(events::range(&mut r, 0, 1).await.unwrap().len(), 1);
    drop(r);

    // What one person may receive: their own events and, for staff, staff-wide ones.
    let mut r = store.reader().await.unwrap();
    let mine = events::for_user(&mut r, user, true, 0, 10, 10).await.unwrap();
    assert_eq!(mine.iter().map(|e| e.0).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(mine[0].1, log[0].frame);
    let guest_view = events::for_user(&mut r, user, false, 0, 10, 10).await.unwrap();
    assert_eq!(guest_view.iter().map(|e| e.0).collect::<Vec<_>>(), vec![2], "staff events are not for guests");
    let stranger = events::for_user(&mut r, UserId::new(), false, 0, 10, 10).await.unwrap();
    assert!(stranger.is_empty());
    assert_eq!(events::for_user(&mut r, user, true, 1, 10, 10).await.unwrap().len(), 1, "after a position");
    assert_eq!(events::for_user(&mut r, user, true, 0, 1, 10).await.unwrap().len(), 1, "up to a position");
    assert_eq!(events::for_user(&mut r, user, true, 0, 10, 1).await.unwrap().len(), 1, "limited");
    drop(r);

    assert_eq!(store.write(|tx| Box::pin(events::prune(tx, T0, 10))).await.unwrap(), 0, "none that old");
    let n = store.write(|tx| Box::pin(events::prune(tx, T0 + 5, 10))).await.unwrap();
    assert_eq!(n, 1);
    let mut r = store.reader().await.unwrap();
    assert_eq!(events::oldest(&mut r).await.unwrap(), Some(2));
    assert_eq!(events::head(&mut r).await.unwrap(), 2, "pruning never moves the head");
}

/// What a resuming member receives, read both ways (a short gap scans the log, a long one
/// merges index reads): the same events, in order.
pub async fn events_for_a_member(store: Store, sink: Sink) {
    use qiao_domain::conversation::{ConversationKind, MemberRole};
    let org = seed_org(&store).await;
    let alice = insert(&store, new_user("alice", "Alice", org.id)).await;
    let mine = create(&store, ConversationKind::Private, "mine").await;
    let theirs = create(&store, ConversationKind::Private, "theirs").await;
    join(&store, mine, alice.id, MemberRole::Member).await;
    let start = events::head(&mut store.reader().await.unwrap()).await.unwrap();
    let (alice_id, dept) = (alice.id, org.id);
    store
        .write(move |tx| {
            Box::pin(async move {
                let updated = |c| EventData::DepartmentDeleted { department_id: c };
                tx.append_event(Audience::Conversation(mine), Some(1), &updated(dept), T0).await?;
                tx.append_event(Audience::Conversation(theirs), Some(1), &updated(dept), T0).await?;
                tx.append_event(Audience::Everyone, None, &updated(dept), T0).await?;
                tx.append_event(Audience::Staff, None, &updated(dept), T0).await?;
                tx.append_event(Audience::User(alice_id), None, &updated(dept), T0).await?;
                tx.append_event(Audience::User(UserId::new()), None, &updated(dept), T0).await?;
                tx.append_event(Audience::Conversation(mine), Some(2), &updated(dept), T0).await
            })
        })
        .await
        .unwrap();
    sink.take();
    let mut r = store.reader().await.unwrap();
    let head = events::head(&mut r).await.unwrap();
    let offsets = |v: Vec<(i64, String)>| v.into_iter().map(|(p, _)| p - start).collect::<Vec<_>>();
    for upto in [head, head + events::SCAN_GAP_MAX * 2] {
        let staff = events::for_user(&mut r, alice.id, true, start, upto, 100).await.unwrap();
        assert_eq!(offsets(staff), vec![1, 3, 4, 5, 7], "up to {upto}");
        let guest = events::for_user(&mut r, alice.id, false, start, upto, 100).await.unwrap();
        assert_eq!(offsets(guest), vec![1, 3, 5, 7], "up to {upto}");
        let first_two = events::for_user(&mut r, alice.id, true, start, upto, 2).await.unwrap();
        assert_eq!(offsets(first_two), vec![1, 3], "up to {upto}");
    }
}

/// Reads through one snapshot agree with each other while commits go on.
pub async fn a_snapshot_does_not_move(store: Store, _: Sink) {
    let append = |store: &Store| {
        let store = store.clone();
        async move {
            let dept = DepartmentId::new();
            store
                .write(move |tx| {
                    Box::pin(async move {
                        tx.append_event(
                            Audience::Staff,
                            None,
                            &EventData::DepartmentDeleted { department_id: dept },
                            T0,
                        )
                        .await
                    })
                })
                .await
                .unwrap();
        }
    };
    append(&store).await;
    let mut snap = store.snapshot().await.unwrap();
    let head = events::head(&mut snap).await.unwrap();
    append(&store).await;
    assert_eq!(events::head(&mut snap).await.unwrap(), head, "the snapshot still sees its own head");
    assert_eq!(events::range(&mut snap, 0, 10).await.unwrap().len() as i64, head);
    snap.end().await.unwrap();
    let mut r = store.reader().await.unwrap();
    assert_eq!(events::head(&mut r).await.unwrap(), head + 1, "a new read sees the commit");
    drop(r);
    // Dropped without ending, it leaves the pooled connection usable.
    for _ in 0..20 {
        let mut snap = store.snapshot().await.unwrap();
        events::head(&mut snap).await.unwrap();
    }
    append(&store).await;
    let mut r = store.reader().await.unwrap();
    assert_eq!(events::head(&mut r).await.unwrap(), head + 2);
}
