use qiao_domain::session::SessionKind;
use qiao_domain::{SessionId, UserId};
use qiao_store::sessions::NewSession;
use qiao_store::{Store, sessions};

use crate::users::{insert, new_user};
use crate::{Sink, T0, seed_org};

fn new_session(user: UserId, token: &str, at: i64) -> NewSession {
    NewSession {
        id: SessionId::new(),
        user_id: user,
        token_hash: token.as_bytes().to_vec(),
        csrf_token: format!("csrf-{token}"),
        kind: SessionKind::Cookie,
        device_name: "Firefox".into(),
        ip: "127.0.0.1".into(),
        now: at,
        expires_at: at + 1000,
    }
}

async fn add(store: &Store, s: NewSession) {
    store
        .write(move |tx| {
            let s = s.clone();
            Box::pin(async move { sessions::insert(tx, &s).await })
        })
        .await
        .unwrap();
}

pub async fn lifecycle(store: Store, _: Sink) {
    let root = seed_org(&store).await;
    let alice = insert(&store, new_user("alice", "Alice", root.id)).await;
    let bob = insert(&store, new_user("bob", "Bob", root.id)).await;
    let s1 = new_session(alice.id, "t1", T0);
    let mut s2 = new_session(alice.id, "t2", T0 + 10);
    s2.kind = SessionKind::Bearer;
    let s3 = new_session(bob.id, "t3", T0);
    for s in [&s1, &s2, &s3] {
        add(&store, s.clone()).await;
    }

    let mut r = store.reader().await.unwrap();
    let auth = sessions::by_token_hash(&mut r, b"t2").await.unwrap().unwrap();
    assert_eq!((auth.id, auth.user_id, auth.kind), (s2.id, alice.id, SessionKind::Bearer));
    assert_eq!(auth.csrf_token, "csrf-t2");
    assert!(sessions::by_token_hash(&mut r, b"zz").await.unwrap().is_none());
    assert_eq!(sessions::get(&mut r, s1.id).await.unwrap().unwrap().user_id, alice.id);
    let listed = sessions::list_for_user(&mut r, alice.id).await.unwrap();
    assert_eq!(listed.iter().map(|s| s.id).collect::<Vec<_>>(), vec![s2.id, s1.id], "most recent first");
    assert_eq!(listed[1].device_name, "Firefox");
    drop(r);

    let (s1_id, s2_id) = (s1.id, s2.id);
    store.write(move |tx| Box::pin(sessions::touch(tx, s1_id, T0 + 50, T0 + 5000))).await.unwrap();
    let mut r = store.reader().await.unwrap();
    let touched = sessions::get(&mut r, s1_id).await.unwrap().unwrap();
    assert_eq!((touched.last_used_at, touched.expires_at), (T0 + 50, T0 + 5000));
    drop(r);

    // Revoke all of Alice's other sessions, then one directly.
    let alice_id = alice.id;
    let gone = store.write(move |tx| Box::pin(sessions::delete_for_user(tx, alice_id, Some(s1_id)))).await.unwrap();
    assert_eq!(gone, vec![s2_id]);
    assert!(store.write(move |tx| Box::pin(sessions::delete(tx, s1_id))).await.unwrap());
    assert!(!store.write(move |tx| Box::pin(sessions::delete(tx, s1_id))).await.unwrap());
    let mut r = store.reader().await.unwrap();
    assert!(sessions::list_for_user(&mut r, alice.id).await.unwrap().is_empty());
    assert_eq!(sessions::list_for_user(&mut r, bob.id).await.unwrap().len(), 1, "others are untouched");
    drop(r);
    let bob_id = bob.id;
    let all = store.write(move |tx| Box::pin(sessions::delete_for_user(tx, bob_id, None))).await.unwrap();
    assert_eq!(all, vec![s3.id]);
}

pub async fn expiry_and_pruning(store: Store, _: Sink) {
    let root = seed_org(&store).await;
    let alice = insert(&store, new_user("alice", "Alice", root.id)).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let s = new_session(alice.id, &format!("t{i}"), T0 + i * 100);
        ids.push(s.id);
        add(&store, s).await;
    }
    // Keep the three most recently used.
    let alice_id = alice.id;
    let mut pruned = store.write(move |tx| Box::pin(sessions::prune_oldest(tx, alice_id, 3))).await.unwrap();
    pruned.sort();
    let mut oldest = vec![ids[0], ids[1]];
    oldest.sort();
    assert_eq!(pruned, oldest);

    // Sessions i expire at T0 + i*100 + 1000: at T0 + 1250, sessions 2 is expired.
    let expired = store.write(|tx| Box::pin(sessions::delete_expired(tx, T0 + 1250))).await.unwrap();
    assert_eq!(expired, vec![(alice.id, ids[2])]);
    let mut r = store.reader().await.unwrap();
    assert_eq!(sessions::list_for_user(&mut r, alice.id).await.unwrap().len(), 2);
}
