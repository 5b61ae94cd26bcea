//! Conversations, members, messages, reactions, mentions, pins, threads, read state.

use qiao_domain::conversation::{ConversationKind, LinkedDepartment, MemberRole};
use qiao_domain::message::Mentions;
use qiao_domain::{ConversationId, ErrorCode, MessageId, UserId};
use qiao_store::conversations::{BrowseQuery, NewConversation};
use qiao_store::members::new_member;
use qiao_store::messages::{Anchor, NewMessage};
use qiao_store::{Store, conversations, members, messages, threads};

use crate::users::{insert, new_user};
use crate::{Sink, T0, add_department, seed_org};

pub async fn create(store: &Store, kind: ConversationKind, name: &str) -> ConversationId {
    let n = NewConversation {
        id: ConversationId::new(),
        kind,
        name: name.into(),
        topic: "topic".into(),
        description: String::new(),
        department_id: None,
        dm_key: None,
        created_by: None,
        at: T0,
    };
    let id = n.id;
    store
        .write(move |tx| {
            let n = n.clone();
            Box::pin(async move { conversations::insert(tx, &n).await })
        })
        .await
        .unwrap();
    id
}

pub async fn join(store: &Store, c: ConversationId, u: UserId, role: MemberRole) {
    store
        .write(move |tx| {
            Box::pin(async move {
                members::insert(tx, c, &new_member(u, role, true, false, T0), 0).await?;
                conversations::refresh_member_count(tx, c).await
            })
        })
        .await
        .unwrap();
}

/// Sends a message at the next sequence number.
pub async fn send(
    store: &Store,
    c: ConversationId,
    sender: UserId,
    body: &str,
    root: Option<MessageId>,
) -> qiao_domain::message::Message {
    send_mentioning(store, c, sender, body, root, Mentions::default()).await
}

pub async fn send_mentioning(
    store: &Store,
    c: ConversationId,
    sender: UserId,
    body: &str,
    root: Option<MessageId>,
    mentions: Mentions,
) -> qiao_domain::message::Message {
    let body = body.to_owned();
    store
        .write(move |tx| {
            let (body, mentions) = (body.clone(), mentions.clone());
            Box::pin(async move {
                let seq = conversations::next_seq(tx, c, Some(T0 + 1)).await?;
                let m = NewMessage {
                    id: MessageId::new(),
                    conversation_id: c,
                    seq,
                    sender_id: sender,
                    thread_root_id: root,
                    body,
                    mentions,
                    client_key: Some(format!("key-{seq}-{}", root.is_some())),
                    at: T0 + seq,
                };
                messages::insert(tx, &m).await
            })
        })
        .await
        .unwrap()
}

pub async fn conversations_and_members(store: Store, _: Sink) {
    let root = seed_org(&store).await;
    let eng = add_department(&store, root.id, "Eng").await;
    let backend = add_department(&store, eng.id, "Backend").await;
    let alice = insert(&store, new_user("alice", "Alice", eng.id)).await;
    let mut b = new_user("bob", "Bob", root.id);
    b.secondary_department_ids = vec![backend.id];
    let bob = insert(&store, b).await;
    let mut g = new_user("guest", "Guest", backend.id);
    g.role = qiao_domain::user::Role::Guest;
    let guest = insert(&store, g).await;

    let general = create(&store, ConversationKind::Public, "General 综合").await;
    let secret = create(&store, ConversationKind::Private, "Secret").await;
    let archived = create(&store, ConversationKind::Public, "Old stuff").await;
    join(&store, general, alice.id, MemberRole::Admin).await;
    join(&store, general, bob.id, MemberRole::Member).await;
    join(&store, secret, alice.id, MemberRole::Member).await;

    // Settings, archiving, sequence numbers.
    let mut r = store.reader().await.unwrap();
    let mut old = conversations::get(&mut r, archived).await.unwrap().unwrap();
    drop(r);
    old.archived_at = Some(T0 + 5);
    old.name = "Old stuff (归档)".into();
    let o = old.clone();
    store
        .write(move |tx| {
            let o = o.clone();
            Box::pin(async move { conversations::update(tx, &o).await })
        })
        .await
        .unwrap();
    let seqs = store
        .write(move |tx| {
            Box::pin(async move {
                Ok((
                    conversations::next_seq(tx, general, None).await?,
                    conversations::next_seq(tx, general, Some(T0 + 9)).await?,
                ))
            })
        })
        .await
        .unwrap();
    assert_eq!(seqs, (1, 2));
    let draft = |c, sender| NewMessage {
        id: MessageId::new(),
        conversation_id: c,
        seq: 0,
        sender_id: sender,
        thread_root_id: None,
        body: "next".into(),
        mentions: Mentions::default(),
        client_key: None,
        at: T0 + 9,
    };
    let (a, g, old) = (draft(general, alice.id), draft(general, guest.id), draft(archived, alice.id));
    let guarded = store
        .write(move |tx| {
            let (a, g, old) = (a.clone(), g.clone(), old.clone());
            Box::pin(async move {
                Ok((
                    messages::insert_next(tx, &a).await?.map(|m| m.seq),
                    messages::insert_next(tx, &g).await?.map(|m| m.seq),
                    messages::insert_next(tx, &old).await?.map(|m| m.seq),
                ))
            })
        })
        .await
        .unwrap();
    assert_eq!(guarded, (Some(3), None, None), "members only, open conversations only");
    let missing =
        store.write(|tx| Box::pin(conversations::next_seq(tx, ConversationId::new(), None))).await.unwrap_err();
    assert_eq!(missing.code, ErrorCode::NotFound);

    let mut r = store.reader().await.unwrap();
    let g = conversations::get(&mut r, general).await.unwrap().unwrap();
    assert_eq!((g.last_seq, g.last_message_at, g.member_count), (3, Some(T0 + 9), 2));
    // Who else is in a channel, and how many of them are admins able to act.
    assert_eq!(members::others_and_admins(&mut r, general, bob.id).await.unwrap(), (1, 1));
    assert_eq!(members::others_and_admins(&mut r, general, alice.id).await.unwrap(), (1, 0));
    assert_eq!(members::others_and_admins(&mut r, secret, alice.id).await.unwrap(), (0, 0));
    assert_eq!(conversations::get(&mut r, archived).await.unwrap().unwrap().archived_at, Some(T0 + 5));

    // Browsing public channels: search, archived, paging.
    let all = |search: Option<&str>, archived| BrowseQuery {
        search: search.map(Into::into),
        include_archived: archived,
        after: None,
        limit: 10,
    };
    assert_eq!(conversations::browse(&mut r, &all(None, false)).await.unwrap().len(), 1);
    assert_eq!(conversations::browse(&mut r, &all(None, true)).await.unwrap().len(), 2);
    assert_eq!(conversations::browse(&mut r, &all(Some("综合"), true)).await.unwrap()[0].id, general);
    // Traditional characters, full-width letters and the name's pinyin find it too.
    for q in ["綜合", "ＧＥＮＥＲＡＬ", "zonghe", "zong he", "zh"] {
        let found = conversations::browse(&mut r, &all(Some(q), true)).await.unwrap();
        assert_eq!(found.iter().map(|c| c.id).collect::<Vec<_>>(), [general], "{q}");
    }
    assert!(conversations::browse(&mut r, &all(Some("zongge"), true)).await.unwrap().is_empty());
    assert!(
        conversations::browse(&mut r, &all(Some("secret"), true)).await.unwrap().is_empty(),
        "private channels are not browsable"
    );
    let first = conversations::browse(&mut r, &BrowseQuery { limit: 1, include_archived: true, ..Default::default() })
        .await
        .unwrap();
    let key = qiao_domain::text::fold(&first[0].name);
    let next = conversations::browse(
        &mut r,
        &BrowseQuery { limit: 5, include_archived: true, after: Some((key, first[0].id)), ..Default::default() },
    )
    .await
    .unwrap();
    assert_eq!(next.len(), 1);
    assert_ne!(next[0].id, first[0].id);

    // Members.
    let (m, read) = members::get(&mut r, general, alice.id).await.unwrap().unwrap();
    assert_eq!((m.role, m.direct, m.via_department, read), (MemberRole::Admin, true, false, 0));
    assert!(members::get(&mut r, secret, bob.id).await.unwrap().is_none());
    let listed = members::list(&mut r, general, None, 10).await.unwrap();
    assert_eq!(listed.len(), 2);
    let after_first = members::list(&mut r, general, Some(listed[0].user_id), 10).await.unwrap();
    assert_eq!(after_first.len(), 1);
    let mut ids = vec![alice.id, bob.id];
    ids.sort();
    assert_eq!(members::user_ids(&mut r, general).await.unwrap(), ids);
    assert!(members::share_a_conversation(&mut r, alice.id, bob.id).await.unwrap());
    assert_eq!(
        members::filter_members(&mut r, secret, &[alice.id, bob.id, UserId::new()]).await.unwrap(),
        vec![alice.id]
    );
    let (kind, archived_at, me) = conversations::facts(&mut r, general, alice.id).await.unwrap().unwrap();
    assert_eq!((kind, archived_at, me.map(|m| m.role)), (ConversationKind::Public, None, Some(MemberRole::Admin)));
    let (_, _, outsider) = conversations::facts(&mut r, secret, bob.id).await.unwrap().unwrap();
    assert!(outsider.is_none());
    assert!(conversations::facts(&mut r, ConversationId::new(), bob.id).await.unwrap().is_none());
    assert!(!members::share_a_conversation(&mut r, bob.id, guest.id).await.unwrap());
    assert_eq!(
        members::sharing_with(&mut r, bob.id, &[alice.id, guest.id, bob.id]).await.unwrap().len(),
        2,
        "alice and bob himself"
    );
    let mut alice_convs = members::conversation_ids_of(&mut r, alice.id).await.unwrap();
    alice_convs.sort();
    let mut expected_convs = vec![general, secret];
    expected_convs.sort();
    assert_eq!(alice_convs, expected_convs);
    let general_name = conversations::get(&mut r, general).await.unwrap().unwrap().name;
    assert_eq!(
        members::conversation_ids_named(&mut r, alice.id, true, &general_name.to_uppercase()).await.unwrap(),
        [general]
    );
    assert_eq!(members::conversation_ids_named(&mut r, alice.id, true, &secret.to_string()).await.unwrap(), [secret]);
    assert!(members::conversation_ids_named(&mut r, bob.id, true, &secret.to_string()).await.unwrap().is_empty());
    assert!(members::conversation_ids_named(&mut r, alice.id, true, "no such room").await.unwrap().is_empty());
    // What one may search: one's conversations and, for staff, public channels (archived too).
    let sorted = |mut v: Vec<ConversationId>| {
        v.sort();
        v
    };
    assert_eq!(sorted(members::searchable_ids(&mut r, bob.id, true).await.unwrap()), sorted(vec![general, archived]));
    assert_eq!(
        sorted(members::searchable_ids(&mut r, alice.id, true).await.unwrap()),
        sorted(vec![general, secret, archived])
    );
    assert!(members::searchable_ids(&mut r, guest.id, false).await.unwrap().is_empty(), "guests: only their own");
    assert_eq!(members::conversation_ids_named(&mut r, guest.id, false, "OLD stuff (归档)").await.unwrap(), []);
    assert_eq!(members::conversation_ids_named(&mut r, bob.id, true, "OLD stuff (归档)").await.unwrap(), [archived]);
    assert_eq!(members::conversation_ids_named(&mut r, bob.id, true, &archived.to_string()).await.unwrap(), [archived]);
    // Department membership (primary or secondary; guests never).
    let mut in_eng = members::staff_in_departments(&mut r, &[eng.id, backend.id]).await.unwrap();
    in_eng.sort();
    assert_eq!(in_eng, ids);
    assert_eq!(members::members_in_departments(&mut r, general, &[backend.id]).await.unwrap(), vec![bob.id]);
    drop(r);

    // Role changes, read positions, leaving.
    let mut promoted = m.clone();
    promoted.user_id = bob.id;
    promoted.role = MemberRole::Poster;
    promoted.via_department = true;
    let p = promoted.clone();
    store
        .write(move |tx| {
            let p = p.clone();
            Box::pin(async move {
                members::update(tx, general, &p).await?;
                members::set_read(tx, general, p.user_id, 2).await
            })
        })
        .await
        .unwrap();
    let mut r = store.reader().await.unwrap();
    let (bm, bread) = members::get(&mut r, general, bob.id).await.unwrap().unwrap();
    assert_eq!((bm.role, bm.via_department, bread), (MemberRole::Poster, true, 2));
    assert_eq!(members::via_department(&mut r, general).await.unwrap().len(), 1);
    drop(r);
    let removed = store
        .write(move |tx| {
            Box::pin(async move {
                conversations::adjust_member_count(tx, general, 5).await?;
                conversations::adjust_member_count(tx, general, -5).await?;
                let gone = members::delete(tx, general, bob.id).await?.is_some();
                let again = members::delete(tx, general, bob.id).await?.is_some();
                conversations::refresh_member_count(tx, general).await?;
                Ok((gone, again))
            })
        })
        .await
        .unwrap();
    assert_eq!(removed, (true, false));

    // Listing my conversations with state.
    let mut r = store.reader().await.unwrap();
    let mine = conversations::list_for_user(&mut r, alice.id).await.unwrap();
    assert_eq!(mine.len(), 2);
    assert_eq!(mine[0].0.id, general, "most recently active first");
    assert_eq!(mine[0].0.member_count, 1);
    assert_eq!(mine[0].1.role, MemberRole::Admin);
    assert!(conversations::list_for_user(&mut r, guest.id).await.unwrap().is_empty());
    assert!(conversations::my_state_in(&mut r, secret, bob.id).await.unwrap().is_none());
    assert_eq!(conversations::my_state_in(&mut r, secret, alice.id).await.unwrap().unwrap().read_seq, 0);
}

pub async fn department_links_and_dm_keys(store: Store, _: Sink) {
    let root = seed_org(&store).await;
    let eng = add_department(&store, root.id, "Eng").await;
    let sales = add_department(&store, root.id, "Sales").await;
    let c = create(&store, ConversationKind::Project, "Launch").await;
    let dept_channel = NewConversation {
        id: ConversationId::new(),
        kind: ConversationKind::Department,
        name: "Eng".into(),
        topic: String::new(),
        description: String::new(),
        department_id: Some(eng.id),
        dm_key: None,
        created_by: None,
        at: T0,
    };
    let dm = NewConversation {
        id: ConversationId::new(),
        kind: ConversationKind::Dm,
        name: String::new(),
        topic: String::new(),
        description: String::new(),
        department_id: None,
        dm_key: Some("a:b".into()),
        created_by: None,
        at: T0,
    };
    let (dc, dmc) = (dept_channel.clone(), dm.clone());
    let links = vec![
        LinkedDepartment { department_id: eng.id, include_subdepartments: true },
        LinkedDepartment { department_id: sales.id, include_subdepartments: false },
    ];
    let l = links.clone();
    store
        .write(move |tx| {
            let (dc, dmc, l) = (dc.clone(), dmc.clone(), l.clone());
            Box::pin(async move {
                conversations::insert(tx, &dc).await?;
                conversations::insert(tx, &dmc).await?;
                conversations::set_linked_departments(tx, c, &l).await?;
                conversations::set_linked_departments(
                    tx,
                    dc.id,
                    &[LinkedDepartment { department_id: eng.id, include_subdepartments: true }],
                )
                .await
            })
        })
        .await
        .unwrap();
    // A second DM for the same pair is refused by the database.
    let dup = NewConversation { id: ConversationId::new(), ..dm.clone() };
    let err = store
        .write(move |tx| {
            let d = dup.clone();
            Box::pin(async move { conversations::insert(tx, &d).await })
        })
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);

    let mut r = store.reader().await.unwrap();
    let mut got = conversations::get(&mut r, c).await.unwrap().unwrap().linked_departments;
    got.sort_by_key(|l| l.department_id);
    let mut want = links.clone();
    want.sort_by_key(|l| l.department_id);
    assert_eq!(got, want);
    let mut linked = conversations::linked_to(&mut r, &[eng.id]).await.unwrap();
    linked.sort();
    let mut expect = vec![c, dept_channel.id];
    expect.sort();
    assert_eq!(linked, expect);
    assert_eq!(conversations::linked_to(&mut r, &[sales.id]).await.unwrap(), vec![c]);
    assert_eq!(conversations::by_department(&mut r, eng.id).await.unwrap(), Some(dept_channel.id));
    assert_eq!(conversations::by_department(&mut r, sales.id).await.unwrap(), None);
    assert_eq!(conversations::by_dm_key(&mut r, "a:b").await.unwrap(), Some(dm.id));
    assert_eq!(conversations::by_dm_key(&mut r, "x:y").await.unwrap(), None);
    let mut without = conversations::departments_without_channel(&mut r).await.unwrap();
    without.sort();
    let mut w = vec![root.id, sales.id];
    w.sort();
    assert_eq!(without, w);
}

pub async fn messages_history_and_threads(store: Store, _: Sink) {
    let root = seed_org(&store).await;
    let alice = insert(&store, new_user("alice", "Alice", root.id)).await;
    let bob = insert(&store, new_user("bob", "Bob", root.id)).await;
    let c = create(&store, ConversationKind::Public, "chat").await;
    join(&store, c, alice.id, MemberRole::Member).await;
    join(&store, c, bob.id, MemberRole::Member).await;

    let mut sent = Vec::new();
    for i in 0..10 {
        sent.push(send(&store, c, if i % 2 == 0 { alice.id } else { bob.id }, &format!("消息 {i}"), None).await);
    }
    let root_msg = sent[3].clone();
    let reply1 = send(&store, c, alice.id, "reply 1", Some(root_msg.id)).await;
    let reply2 = send(&store, c, bob.id, "reply 2", Some(root_msg.id)).await;
    let summary = store
        .write(move |tx| {
            Box::pin(async move {
                messages::add_reply(tx, root_msg.id, alice.id, T0 + 50).await?;
                messages::add_reply(tx, root_msg.id, bob.id, T0 + 60).await
            })
        })
        .await
        .unwrap();
    assert_eq!(summary.reply_count, 2);
    assert_eq!(summary.participant_ids, vec![alice.id, bob.id]);
    assert_eq!(summary.last_reply_at, Some(T0 + 60));
    // Counting again from the replies themselves: the same; without a deleted one, less.
    let (again, after_delete) = store
        .write(move |tx| {
            Box::pin(async move {
                let again = messages::recount_replies(tx, root_msg.id).await?;
                messages::tombstone(tx, reply1.id, T0 + 70).await?;
                Ok((again, messages::recount_replies(tx, root_msg.id).await?))
            })
        })
        .await
        .unwrap();
    assert_eq!((again.reply_count, again.participant_ids.clone()), (2, vec![alice.id, bob.id]));
    assert_eq!(again.last_reply_at, Some(reply2.created_at));
    assert_eq!((after_delete.reply_count, after_delete.participant_ids.clone()), (1, vec![bob.id]));
    assert_eq!(after_delete.last_reply_at, Some(reply2.created_at));

    let mut r = store.reader().await.unwrap();
    let got = messages::get(&mut r, sent[3].id).await.unwrap().unwrap();
    assert_eq!(got.thread.as_ref().map(|t| t.reply_count), Some(1), "one reply was deleted");
    assert_eq!(got.body, "消息 3");
    assert!(messages::get(&mut r, MessageId::new()).await.unwrap().is_none());
    // Many at once: the same messages as one by one; unknown ids are left out.
    let wanted = [sent[3].id, MessageId::new(), sent[0].id, reply2.id];
    let mut many = messages::get_many(&mut r, &wanted).await.unwrap();
    many.sort_by_key(|m| m.seq);
    let mut one_by_one = Vec::new();
    for id in [sent[0].id, sent[3].id, reply2.id] {
        one_by_one.push(messages::get(&mut r, id).await.unwrap().unwrap());
    }
    one_by_one.sort_by_key(|m| m.seq);
    assert_eq!(many, one_by_one);
    assert!(messages::get_many(&mut r, &[]).await.unwrap().is_empty());
    let key = sent[2].client_key.clone().unwrap();
    assert_eq!(messages::by_client_key(&mut r, alice.id, &key).await.unwrap().unwrap().id, sent[2].id);
    assert!(messages::by_client_key(&mut r, bob.id, &key).await.unwrap().is_none(), "keys are per sender");

    // History pages exclude thread replies and walk both ways.
    let seqs = |p: &messages::Page| p.items.iter().map(|m| m.seq).collect::<Vec<_>>();
    let latest = messages::page(&mut r, c, None, Anchor::Latest, 4).await.unwrap();
    assert_eq!(seqs(&latest), vec![7, 8, 9, 10]);
    assert!(latest.more_before && !latest.more_after);
    let older = messages::page(&mut r, c, None, Anchor::Before(7), 4).await.unwrap();
    assert_eq!(seqs(&older), vec![3, 4, 5, 6]);
    assert!(older.more_before && older.more_after);
    let oldest = messages::page(&mut r, c, None, Anchor::Before(3), 4).await.unwrap();
    assert_eq!(seqs(&oldest), vec![1, 2]);
    assert!(!oldest.more_before && oldest.more_after);
    let newer = messages::page(&mut r, c, None, Anchor::After(6), 3).await.unwrap();
    assert_eq!(seqs(&newer), vec![7, 8, 9]);
    assert!(newer.more_before && newer.more_after);
    let around = messages::page(&mut r, c, None, Anchor::Around(5), 5).await.unwrap();
    assert_eq!(seqs(&around), vec![3, 4, 5, 6, 7]);
    assert!(around.more_before && around.more_after);
    let thread = messages::page(&mut r, c, Some(sent[3].id), Anchor::After(0), 50).await.unwrap();
    assert_eq!(thread.items.iter().map(|m| m.id).collect::<Vec<_>>(), vec![reply1.id, reply2.id]);
    assert!(!thread.more_before && !thread.more_after);
    drop(r);

    // Edits keep history; deletion leaves a tombstone and removes the content everywhere.
    let target = sent[0].id;
    let edited_mentions = Mentions { user_ids: vec![bob.id], department_ids: vec![], channel: true };
    let em = edited_mentions.clone();
    store
        .write(move |tx| {
            let em = em.clone();
            Box::pin(async move {
                messages::edit(tx, target, "v2", &em, T0 + 100, alice.id).await?;
                messages::edit(tx, target, "v3", &em, T0 + 200, alice.id).await
            })
        })
        .await
        .unwrap();
    let mut r = store.reader().await.unwrap();
    let m = messages::get(&mut r, target).await.unwrap().unwrap();
    assert_eq!((m.body.as_str(), m.edited_at, m.mentions.clone()), ("v3", Some(T0 + 200), edited_mentions));
    let history = messages::edits(&mut r, target).await.unwrap();
    assert_eq!(messages::edit_count(&mut r, target).await.unwrap(), history.len() as i64);
    assert_eq!(history.iter().map(|e| e.body.as_str()).collect::<Vec<_>>(), vec!["消息 0", "v2"]);
    drop(r);

    let first_message = m.clone();
    store
        .write(move |tx| {
            let fm = first_message.clone();
            Box::pin(async move {
                messages::add_reaction(tx, target, "👍", bob.id, T0).await?;
                messages::set_pinned(tx, target, Some((T0 + 300, bob.id))).await?;
                messages::insert_mentions(tx, &fm, &[bob.id]).await?;
                messages::tombstone(tx, target, T0 + 400).await
            })
        })
        .await
        .unwrap();
    let mut r = store.reader().await.unwrap();
    let dead = messages::get(&mut r, target).await.unwrap().unwrap();
    assert_eq!((dead.body.as_str(), dead.deleted_at, dead.pinned_at), ("", Some(T0 + 400), None));
    assert!(dead.reactions.is_empty() && dead.mentions.is_empty());
    assert!(messages::edits(&mut r, target).await.unwrap().is_empty(), "earlier versions go with the content");
    assert_eq!(messages::count_pinned(&mut r, c).await.unwrap(), 0);
    let latest = messages::page(&mut r, c, None, Anchor::After(0), 100).await.unwrap();
    assert_eq!(latest.items.len(), 10, "the tombstone keeps its place");
    let mine = conversations::my_state_in(&mut r, c, bob.id).await.unwrap().unwrap();
    assert_eq!(mine.mention_count, 0);
    let edit_missing = {
        drop(r);
        store
            .write(move |tx| {
                Box::pin(async move { messages::edit(tx, target, "v4", &Mentions::default(), T0, alice.id).await })
            })
            .await
    };
    assert_eq!(edit_missing.unwrap_err().code, ErrorCode::NotFound, "deleted messages cannot be edited");
}

pub async fn reactions_pins_mentions_and_unread(store: Store, _: Sink) {
    let root = seed_org(&store).await;
    let alice = insert(&store, new_user("alice", "Alice", root.id)).await;
    let bob = insert(&store, new_user("bob", "Bob", root.id)).await;
    let c = create(&store, ConversationKind::Private, "team").await;
    join(&store, c, alice.id, MemberRole::Member).await;
    join(&store, c, bob.id, MemberRole::Member).await;
    let m1 = send(&store, c, alice.id, "one", None).await;
    let m2 = send(&store, c, alice.id, "two", None).await;
    let _mine = send(&store, c, bob.id, "mine", None).await;

    let (added, again, count) = store
        .write(move |tx| {
            Box::pin(async move {
                let a = messages::add_reaction(tx, m1.id, "👍", bob.id, T0).await?;
                let b = messages::add_reaction(tx, m1.id, "👍", bob.id, T0).await?;
                messages::add_reaction(tx, m1.id, "👍", alice.id, T0 + 1).await?;
                messages::add_reaction(tx, m1.id, ":tada:", alice.id, T0 + 2).await?;
                Ok((a, b, messages::emoji_count(tx, m1.id).await?))
            })
        })
        .await
        .unwrap();
    assert_eq!((added, again, count), (true, false, 2));
    let mut r = store.reader().await.unwrap();
    let got = messages::get(&mut r, m1.id).await.unwrap().unwrap();
    assert_eq!(got.reactions.len(), 2);
    assert_eq!((got.reactions[0].emoji.as_str(), got.reactions[0].count), ("👍", 2));
    assert_eq!(got.reactions[0].user_ids, vec![bob.id, alice.id], "oldest first");
    drop(r);
    let (removed, none) = store
        .write(move |tx| {
            Box::pin(async move {
                Ok((
                    messages::remove_reaction(tx, m1.id, "👍", bob.id).await?,
                    messages::remove_reaction(tx, m1.id, "👍", bob.id).await?,
                ))
            })
        })
        .await
        .unwrap();
    assert_eq!((removed, none), (true, false));

    // Pins.
    store
        .write(move |tx| {
            Box::pin(async move {
                messages::set_pinned(tx, m1.id, Some((T0 + 10, alice.id))).await?;
                messages::set_pinned(tx, m2.id, Some((T0 + 20, alice.id))).await
            })
        })
        .await
        .unwrap();
    let mut r = store.reader().await.unwrap();
    let pins = messages::pinned(&mut r, c).await.unwrap();
    assert_eq!(pins.iter().map(|m| m.id).collect::<Vec<_>>(), vec![m2.id, m1.id]);
    assert_eq!(messages::count_pinned(&mut r, c).await.unwrap(), 2);
    drop(r);
    store.write(move |tx| Box::pin(messages::set_pinned(tx, m1.id, None))).await.unwrap();

    // Unread and mention counts follow the read position; own messages never count.
    let m2c = m2.clone();
    store
        .write(move |tx| {
            let m = m2c.clone();
            Box::pin(async move {
                messages::insert_mentions(tx, &m, &[bob.id]).await?;
                assert!(messages::delete_mentions(tx, MessageId::new()).await?.is_empty());
                // Re-recording: who was mentioned comes back, and the rows are as before.
                assert_eq!(messages::delete_mentions(tx, m.id).await?, vec![bob.id]);
                messages::insert_mentions(tx, &m, &[bob.id]).await
            })
        })
        .await
        .unwrap();
    let mut r = store.reader().await.unwrap();
    let bob_state = conversations::my_state_in(&mut r, c, bob.id).await.unwrap().unwrap();
    assert_eq!((bob_state.unread_count, bob_state.mention_count), (2, 1));
    let alice_state = conversations::my_state_in(&mut r, c, alice.id).await.unwrap().unwrap();
    assert_eq!((alice_state.unread_count, alice_state.mention_count), (1, 0));
    drop(r);
    store.write(move |tx| Box::pin(members::set_read(tx, c, bob.id, m1.seq))).await.unwrap();
    let mut r = store.reader().await.unwrap();
    let bob_state = conversations::my_state_in(&mut r, c, bob.id).await.unwrap().unwrap();
    assert_eq!((bob_state.read_seq, bob_state.unread_count, bob_state.mention_count), (m1.seq, 1, 1));
    drop(r);
    store
        .write(move |tx| {
            Box::pin(async move {
                messages::delete_mentions(tx, m2.id).await?;
                members::set_read(tx, c, bob.id, m2.seq).await
            })
        })
        .await
        .unwrap();
    let mut r = store.reader().await.unwrap();
    let bob_state = conversations::my_state_in(&mut r, c, bob.id).await.unwrap().unwrap();
    assert_eq!((bob_state.unread_count, bob_state.mention_count), (0, 0));
    drop(r);

    // A mention of many at once (a department's people) is recorded once for each, in
    // statements of several rows: 101 ids, one of them twice.
    let mut many = Vec::new();
    for i in 0..100 {
        let u = insert(&store, new_user(&format!("many{i}"), &format!("Many {i}"), root.id)).await;
        join(&store, c, u.id, MemberRole::Member).await;
        many.push(u.id);
    }
    many.push(many[7]);
    let loud = send(&store, c, alice.id, "everyone in sales", None).await;
    let (ids, loud2) = (many.clone(), loud.clone());
    store
        .write(move |tx| {
            let (m, ids) = (loud2.clone(), ids.clone());
            Box::pin(async move { messages::insert_mentions(tx, &m, &ids).await })
        })
        .await
        .unwrap();
    let mut r = store.reader().await.unwrap();
    for u in [many[0], many[7], many[63], many[64], many[99]] {
        let state = conversations::my_state_in(&mut r, c, u).await.unwrap().unwrap();
        assert_eq!(state.mention_count, 1, "{u}");
    }
    drop(r);
    let taken = store.write(move |tx| Box::pin(messages::delete_mentions(tx, loud.id))).await.unwrap();
    assert_eq!(taken.len(), 100);
}

pub async fn thread_following(store: Store, _: Sink) {
    let root = seed_org(&store).await;
    let alice = insert(&store, new_user("alice", "Alice", root.id)).await;
    let bob = insert(&store, new_user("bob", "Bob", root.id)).await;
    let c = create(&store, ConversationKind::Public, "chat").await;
    join(&store, c, alice.id, MemberRole::Member).await;
    join(&store, c, bob.id, MemberRole::Member).await;
    let top = send(&store, c, alice.id, "question", None).await;
    let r1 = send(&store, c, bob.id, "answer", Some(top.id)).await;
    store
        .write(move |tx| {
            Box::pin(async move {
                messages::add_reply(tx, top.id, bob.id, T0).await?;
                threads::follow(tx, alice.id, top.id, c, top.seq).await?;
                threads::follow(tx, bob.id, top.id, c, r1.seq).await?;
                // Following again never moves the position back.
                threads::follow(tx, bob.id, top.id, c, 0).await
            })
        })
        .await
        .unwrap();
    let mut r = store.reader().await.unwrap();
    assert_eq!(threads::read_position(&mut r, bob.id, top.id).await.unwrap(), Some(r1.seq));
    let alice_threads = threads::followed(&mut r, alice.id, None, 10).await.unwrap();
    assert_eq!(alice_threads.len(), 1);
    assert_eq!((alice_threads[0].root_id, alice_threads[0].unread_count), (top.id, 1));
    assert_eq!(alice_threads[0].last_reply_seq, Some(r1.seq));
    assert_eq!(
        threads::followed(&mut r, bob.id, None, 10).await.unwrap()[0].unread_count,
        0,
        "own replies are not unread"
    );
    drop(r);
    let unfollowed = store
        .write(move |tx| {
            Box::pin(async move {
                threads::set_read(tx, alice.id, top.id, r1.seq).await?;
                Ok((threads::unfollow(tx, bob.id, top.id).await?, threads::unfollow(tx, bob.id, top.id).await?))
            })
        })
        .await
        .unwrap();
    assert_eq!(unfollowed, (true, false));
    let mut r = store.reader().await.unwrap();
    assert_eq!(threads::followed(&mut r, alice.id, None, 10).await.unwrap()[0].unread_count, 0);
    assert!(threads::read_position(&mut r, bob.id, top.id).await.unwrap().is_none());
    assert!(threads::followed(&mut r, bob.id, None, 10).await.unwrap().is_empty());
    drop(r);
    // `@channel` in a reply is a mention for everyone following the thread (once, also when
    // it names them too), not for its author.
    let everyone = Mentions { channel: true, ..Mentions::default() };
    send_mentioning(&store, c, bob.id, "@channel", Some(top.id), everyone.clone()).await;
    send_mentioning(&store, c, alice.id, "@channel", Some(top.id), everyone).await;
    let mut r = store.reader().await.unwrap();
    let alice_threads = threads::followed(&mut r, alice.id, None, 10).await.unwrap();
    assert_eq!((alice_threads[0].unread_count, alice_threads[0].mention_count), (1, 1));
    drop(r);
    // Forgetting a conversation's threads leaves those of other conversations.
    let other = create(&store, ConversationKind::Public, "other").await;
    join(&store, other, alice.id, MemberRole::Member).await;
    let elsewhere = send(&store, other, bob.id, "elsewhere", None).await;
    let forgotten = store
        .write(move |tx| {
            Box::pin(async move {
                threads::follow(tx, alice.id, elsewhere.id, other, elsewhere.seq).await?;
                threads::unfollow_in(tx, alice.id, c).await
            })
        })
        .await
        .unwrap();
    assert_eq!(forgotten, vec![top.id], "the roots it forgot, for the person's devices");
    let mut r = store.reader().await.unwrap();
    assert!(threads::read_position(&mut r, alice.id, top.id).await.unwrap().is_none());
    assert_eq!(threads::read_position(&mut r, alice.id, elsewhere.id).await.unwrap(), Some(elsewhere.seq));
    drop(r);
    // Leaving a conversation forgets its threads too, and says which (nothing for someone
    // who was not a member).
    let left = store
        .write(move |tx| {
            Box::pin(async move {
                let left = members::delete(tx, other, alice.id).await?;
                let again = members::delete(tx, other, alice.id).await?;
                Ok((left, again))
            })
        })
        .await
        .unwrap();
    assert_eq!(left, (Some(vec![elsewhere.id]), None));
    let mut r = store.reader().await.unwrap();
    assert!(threads::read_position(&mut r, alice.id, elsewhere.id).await.unwrap().is_none());
    drop(r);
    // Pages: newest reply (or root) first, ties by root id, each thread once.
    let mut roots = Vec::new();
    for i in 0..5 {
        roots.push(send(&store, c, bob.id, &format!("topic {i}"), None).await);
    }
    let (ids, replied) = (roots.iter().map(|m| m.id).collect::<Vec<_>>(), roots[1].id);
    store
        .write(move |tx| {
            let ids = ids.clone();
            Box::pin(async move {
                for id in ids {
                    threads::follow(tx, alice.id, id, c, 0).await?;
                }
                messages::add_reply(tx, replied, bob.id, T0 + 60_000).await
            })
        })
        .await
        .unwrap();
    let mut r = store.reader().await.unwrap();
    let all = threads::followed(&mut r, alice.id, None, 10).await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].root_id, replied, "the latest reply first");
    assert!(all.windows(2).all(|w| (w[0].sort_at, w[0].root_id) > (w[1].sort_at, w[1].root_id)));
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = threads::followed(&mut r, alice.id, after, 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some((last.sort_at, last.root_id));
        paged.extend(page.iter().map(|t| t.root_id));
    }
    assert_eq!(paged, all.iter().map(|t| t.root_id).collect::<Vec<_>>());
}

pub async fn drafts_per_conversation_and_thread(store: Store, _: Sink) {
    use qiao_domain::message::Draft;
    use qiao_store::drafts;
    let root = seed_org(&store).await;
    let alice = insert(&store, new_user("alice", "Alice", root.id)).await;
    let c = create(&store, ConversationKind::Public, "chat").await;
    let other = create(&store, ConversationKind::Public, "other").await;
    join(&store, c, alice.id, MemberRole::Member).await;
    join(&store, other, alice.id, MemberRole::Member).await;
    let top = send(&store, c, alice.id, "question", None).await;
    let draft = |conversation_id, thread_root_id, body: &str, updated_at| Draft {
        conversation_id,
        thread_root_id,
        body: body.into(),
        updated_at,
    };
    let (main, reply, elsewhere) =
        (draft(c, None, "还没写完", T0), draft(c, Some(top.id), "a reply", T0 + 1), draft(other, None, "x", T0 + 2));
    let written = [main.clone(), reply.clone(), elsewhere.clone(), draft(c, None, "还没写完的草稿", T0 + 3)];
    store
        .write(move |tx| {
            let written = written.clone();
            Box::pin(async move {
                for d in &written {
                    drafts::put(tx, alice.id, d).await?;
                }
                Ok(())
            })
        })
        .await
        .unwrap();
    let mut r = store.reader().await.unwrap();
    let got = drafts::get(&mut r, alice.id, c, None).await.unwrap().unwrap();
    assert_eq!((got.body.as_str(), got.updated_at), ("还没写完的草稿", T0 + 3), "one per place: replaced");
    assert_eq!(drafts::get(&mut r, alice.id, c, Some(top.id)).await.unwrap(), Some(reply.clone()));
    let listed = drafts::list(&mut r, alice.id, 10).await.unwrap();
    assert_eq!(listed.iter().map(|d| d.updated_at).collect::<Vec<_>>(), vec![T0 + 3, T0 + 2, T0 + 1], "newest first");
    assert_eq!(drafts::count(&mut r, alice.id).await.unwrap(), 3);
    drop(r);
    // An empty body removes it; leaving a conversation removes its drafts.
    store
        .write(move |tx| {
            let cleared = draft(c, Some(top.id), "", T0 + 4);
            Box::pin(async move {
                drafts::put(tx, alice.id, &cleared).await?;
                members::delete(tx, other, alice.id).await?;
                Ok(())
            })
        })
        .await
        .unwrap();
    let mut r = store.reader().await.unwrap();
    assert!(drafts::get(&mut r, alice.id, c, Some(top.id)).await.unwrap().is_none());
    let listed = drafts::list(&mut r, alice.id, 10).await.unwrap();
    assert_eq!(listed.iter().map(|d| (d.conversation_id, d.thread_root_id)).collect::<Vec<_>>(), vec![(c, None)]);
    assert_eq!(drafts::count(&mut r, alice.id).await.unwrap(), 1, "gone, not just hidden");
    drop(r);
    store.write(move |tx| Box::pin(drafts::delete_in(tx, alice.id, c))).await.unwrap();
    assert_eq!(drafts::count(&mut store.reader().await.unwrap(), alice.id).await.unwrap(), 0);
    // A thread's drafts go with its first message, whoever wrote them; others stay.
    let bob = insert(&store, new_user("bob", "Bob", root.id)).await;
    join(&store, c, bob.id, MemberRole::Member).await;
    let kept = [
        (alice.id, draft(c, Some(top.id), "a", T0)),
        (bob.id, draft(c, Some(top.id), "b", T0)),
        (bob.id, draft(c, None, "c", T0)),
    ];
    store
        .write(move |tx| {
            let kept = kept.clone();
            Box::pin(async move {
                for (who, d) in &kept {
                    drafts::put(tx, *who, d).await?;
                }
                Ok(())
            })
        })
        .await
        .unwrap();
    let mut owners = store.write(move |tx| Box::pin(drafts::delete_for_thread(tx, c, top.id))).await.unwrap();
    owners.sort_by_key(|u| u.0);
    let mut expected = vec![alice.id, bob.id];
    expected.sort_by_key(|u| u.0);
    assert_eq!(owners, expected);
    let mut r = store.reader().await.unwrap();
    assert_eq!((drafts::count(&mut r, alice.id).await.unwrap(), drafts::count(&mut r, bob.id).await.unwrap()), (0, 1));
}

/// In an announcement channel only its admins and posters post, whichever way a send is
/// written (one at a time, or grouped): the insert itself checks, so a role taken away while
/// a send was on its way (or not yet known to another node's cache) stops it.
pub async fn announcement_sends_need_a_poster(store: Store, _: Sink) {
    let root = seed_org(&store).await;
    let alice = insert(&store, new_user("alice", "Alice", root.id)).await;
    let bob = insert(&store, new_user("bob", "Bob", root.id)).await;
    let news = create(&store, ConversationKind::Announcement, "News").await;
    join(&store, news, alice.id, MemberRole::Poster).await;
    join(&store, news, bob.id, MemberRole::Member).await;
    let draft = |sender| NewMessage {
        id: MessageId::new(),
        conversation_id: news,
        seq: 0,
        sender_id: sender,
        thread_root_id: None,
        body: "通知".into(),
        mentions: Mentions::default(),
        client_key: None,
        at: T0 + 9,
    };
    let (p, m) = (draft(alice.id), draft(bob.id));
    let one_by_one = store
        .write(move |tx| {
            let (p, m) = (p.clone(), m.clone());
            Box::pin(async move {
                Ok((
                    messages::insert_next(tx, &p).await?.map(|m| m.seq),
                    messages::insert_next(tx, &m).await?.map(|m| m.seq),
                ))
            })
        })
        .await
        .unwrap();
    assert_eq!(one_by_one, (Some(1), None));
    let (p, m) = (draft(alice.id), draft(bob.id));
    let grouped = store
        .write(move |tx| {
            let (p, m) = (p.clone(), m.clone());
            Box::pin(async move {
                let seqs = messages::insert_many(tx, &[&p, &m]).await?;
                Ok(seqs.into_iter().map(|s| s.map(|m| m.seq)).collect::<Vec<_>>())
            })
        })
        .await
        .unwrap();
    assert_eq!(grouped, vec![Some(2), None]);
}

/// What handing a channel over reads: the channels someone administers, and who has been in
/// one longest among those who could act as its admin.
pub async fn channels_to_hand_over(store: Store, _: Sink) {
    let root = seed_org(&store).await;
    let alice = insert(&store, new_user("alice", "Alice", root.id)).await;
    let bob = insert(&store, new_user("bob", "Bob", root.id)).await;
    let mut g = new_user("guest", "Guest", root.id);
    g.role = qiao_domain::user::Role::Guest;
    let guest = insert(&store, g).await;
    let project = create(&store, ConversationKind::Project, "Project").await;
    let group = create(&store, ConversationKind::Group, "").await;
    join(&store, project, alice.id, MemberRole::Admin).await;
    join(&store, project, guest.id, MemberRole::Member).await;
    join(&store, group, alice.id, MemberRole::Admin).await;
    let mut r = store.reader().await.unwrap();
    let mut held = vec![(project, ConversationKind::Project), (group, ConversationKind::Group)];
    held.sort_by_key(|(id, _)| id.0);
    assert_eq!(members::admin_roles(&mut r, alice.id).await.unwrap(), held);
    assert!(members::admin_roles(&mut r, bob.id).await.unwrap().is_empty());
    assert_eq!(members::successor(&mut r, project, alice.id).await.unwrap(), None, "a guest cannot be one");
    drop(r);
    join(&store, project, bob.id, MemberRole::Member).await;
    let mut r = store.reader().await.unwrap();
    let next = members::successor(&mut r, project, alice.id).await.unwrap().unwrap();
    assert_eq!((next.user_id, next.role), (bob.id, MemberRole::Member));
}
