use qiao_domain::user::{Role, UserStatus};
use qiao_domain::{DepartmentId, ErrorCode, UserId};
use qiao_store::users::{NewUser, UserQuery};
use qiao_store::{Store, users};

use crate::{Sink, T0, add_department, seed_org};

pub fn new_user(username: &str, name: &str, dept: DepartmentId) -> NewUser {
    NewUser {
        id: UserId::new(),
        username: username.into(),
        email: Some(format!("{username}@example.com")),
        display_name: name.into(),
        title: "Engineer".into(),
        role: Role::Member,
        primary_department_id: dept,
        secondary_department_ids: vec![],
        managed_department_ids: vec![],
        password_hash: format!("hash-of-{username}"),
        must_change_password: false,
        now: T0,
    }
}

pub async fn insert(store: &Store, u: NewUser) -> qiao_domain::user::User {
    store
        .write(move |tx| {
            let u = u.clone();
            Box::pin(async move { users::insert(tx, &u).await })
        })
        .await
        .unwrap()
}

pub async fn insert_get_and_credentials(store: Store, _: Sink) {
    let root = seed_org(&store).await;
    let eng = add_department(&store, root.id, "Eng").await;
    let ops = add_department(&store, root.id, "Ops").await;
    let mut nu = new_user("lilei", "李雷", eng.id);
    // The primary department is never also secondary; duplicates collapse.
    nu.secondary_department_ids = vec![ops.id, eng.id, ops.id];
    nu.role = Role::DepartmentAdmin;
    nu.managed_department_ids = vec![eng.id];
    let user = insert(&store, nu.clone()).await;
    assert_eq!(user.secondary_department_ids, vec![ops.id]);
    assert_eq!(user.managed_department_ids, vec![eng.id]);
    assert_eq!(user.status, UserStatus::Active);

    let mut r = store.reader().await.unwrap();
    assert_eq!(users::get(&mut r, user.id).await.unwrap().unwrap(), user);
    assert!(users::get(&mut r, UserId::new()).await.unwrap().is_none());
    let other = {
        drop(r);
        insert(&store, new_user("hanmeimei", "韩梅梅", ops.id)).await
    };
    let mut r = store.reader().await.unwrap();
    let mut many = users::get_many(&mut r, &[user.id, other.id, UserId::new()]).await.unwrap();
    many.sort_by_key(|u| u.username.clone());
    assert_eq!(many, vec![other.clone(), user.clone()]);
    assert!(users::get_many(&mut r, &[]).await.unwrap().is_empty());

    for login in ["lilei", "lilei@example.com"] {
        let c = users::credentials_by_login(&mut r, login).await.unwrap().unwrap();
        assert_eq!((c.user_id, c.password_hash.as_str(), c.status), (user.id, "hash-of-lilei", UserStatus::Active));
    }
    assert!(users::credentials_by_login(&mut r, "nobody").await.unwrap().is_none());
    assert_eq!(users::credentials(&mut r, other.id).await.unwrap().unwrap().password_hash, "hash-of-hanmeimei");
    assert!(users::credentials(&mut r, UserId::new()).await.unwrap().is_none());
    assert_eq!(users::count(&mut r).await.unwrap(), 2);
    let mut by_name =
        users::ids_by_usernames(&mut r, &["lilei".into(), "hanmeimei".into(), "nobody".into()]).await.unwrap();
    by_name.sort();
    let mut expected = vec![user.id, other.id];
    expected.sort();
    assert_eq!(by_name, expected);
    assert_eq!(users::count_active_owners(&mut r).await.unwrap(), 0);
    drop(r);

    let id = user.id;
    store
        .write(move |tx| Box::pin(async move { users::set_password(tx, id, "new-hash", true, T0 + 1).await }))
        .await
        .unwrap();
    let mut r = store.reader().await.unwrap();
    assert_eq!(users::credentials(&mut r, id).await.unwrap().unwrap().password_hash, "new-hash");
    assert!(users::get(&mut r, id).await.unwrap().unwrap().must_change_password);
}

pub async fn update_and_uniqueness(store: Store, _: Sink) {
    let root = seed_org(&store).await;
    let eng = add_department(&store, root.id, "Eng").await;
    let a = insert(&store, new_user("alice", "Alice", eng.id)).await;
    let b = insert(&store, new_user("bob", "Bob", root.id)).await;

    let mut r = store.reader().await.unwrap();
    assert!(users::username_taken(&mut r, "alice", None).await.unwrap());
    assert!(!users::username_taken(&mut r, "alice", Some(a.id)).await.unwrap());
    assert!(!users::username_taken(&mut r, "carol", None).await.unwrap());
    assert!(users::email_taken(&mut r, "bob@example.com", Some(a.id)).await.unwrap());
    assert!(!users::email_taken(&mut r, "bob@example.com", Some(b.id)).await.unwrap());
    drop(r);

    // A duplicate username that slips past the check is still refused by the database.
    let dup = new_user("alice", "Alice 2", eng.id);
    let err = store
        .write(move |tx| {
            let u = dup.clone();
            Box::pin(async move { users::insert(tx, &u).await })
        })
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);

    let mut changed = a.clone();
    changed.display_name = "Alice Wang 王".into();
    changed.email = None;
    changed.role = Role::Owner;
    changed.status = UserStatus::Disabled;
    changed.primary_department_id = root.id;
    changed.secondary_department_ids = vec![eng.id];
    changed.updated_at = T0 + 9;
    let c = changed.clone();
    store
        .write(move |tx| {
            let c = c.clone();
            Box::pin(async move { users::update(tx, &c).await })
        })
        .await
        .unwrap();
    let mut r = store.reader().await.unwrap();
    assert_eq!(users::get(&mut r, a.id).await.unwrap().unwrap(), changed);
    assert_eq!(users::count_active_owners(&mut r).await.unwrap(), 0, "disabled owners do not count");
    drop(r);

    let mut ghost = changed.clone();
    ghost.id = UserId::new();
    let err = store
        .write(move |tx| {
            let g = ghost.clone();
            Box::pin(async move { users::update(tx, &g).await })
        })
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
}

pub async fn directory_listing(store: Store, _: Sink) {
    let root = seed_org(&store).await;
    let eng = add_department(&store, root.id, "Eng").await;
    let backend = add_department(&store, eng.id, "Backend").await;
    let sales = add_department(&store, root.id, "Sales").await;
    let zhang = insert(&store, new_user("zhangsan", "张三", backend.id)).await;
    let mut li = new_user("lisi", "李四", sales.id);
    li.secondary_department_ids = vec![eng.id];
    let li = insert(&store, li).await;
    let mut wang = new_user("wangwu", "王五", eng.id);
    wang.title = "50% Manager_x".into();
    let wang = insert(&store, wang).await;
    let mut gone = new_user("gone", "Gone Person", eng.id);
    gone.email = None;
    let gone = insert(&store, gone).await;
    let mut disabled = gone.clone();
    disabled.status = UserStatus::Disabled;
    store
        .write(move |tx| {
            let d = disabled.clone();
            Box::pin(async move { users::update(tx, &d).await })
        })
        .await
        .unwrap();

    let mut r = store.reader().await.unwrap();
    let names = |v: Vec<qiao_domain::user::User>| v.into_iter().map(|u| u.username).collect::<Vec<_>>();
    let all = UserQuery { limit: 100, ..Default::default() };
    assert_eq!(users::list(&mut r, &all).await.unwrap().len(), 3, "disabled people are hidden by default");
    let with_disabled = UserQuery { include_disabled: true, ..all.clone() };
    assert_eq!(users::list(&mut r, &with_disabled).await.unwrap().len(), 4);

    // Search: Chinese substring, case-insensitive e-mail, and LIKE wildcards taken literally.
    let search = |s: &str| UserQuery { search: Some(s.into()), ..all.clone() };
    assert_eq!(names(users::list(&mut r, &search("张")).await.unwrap()), vec!["zhangsan"]);
    assert_eq!(names(users::list(&mut r, &search("LISI@EXAMPLE")).await.unwrap()), vec!["lisi"]);
    assert_eq!(names(users::list(&mut r, &search("50%")).await.unwrap()), vec!["wangwu"]);
    assert!(users::list(&mut r, &search("5_%")).await.unwrap().is_empty());

    // Department membership, direct and recursive (secondary members included).
    let in_dept = |d, recursive| UserQuery { department_id: Some(d), recursive, ..all.clone() };
    let mut direct = names(users::list(&mut r, &in_dept(eng.id, false)).await.unwrap());
    direct.sort();
    assert_eq!(direct, vec!["lisi", "wangwu"]);
    let mut deep = names(users::list(&mut r, &in_dept(eng.id, true)).await.unwrap());
    deep.sort();
    assert_eq!(deep, vec!["lisi", "wangwu", "zhangsan"]);
    assert!(users::list(&mut r, &in_dept(DepartmentId::new(), true)).await.unwrap().is_empty());

    // Keyset pagination walks everyone exactly once, in display-name order.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = users::list(
            &mut r,
            &UserQuery { limit: 2, after: after.clone(), include_disabled: true, ..Default::default() },
        )
        .await
        .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|u| (u.display_name.clone(), u.id));
        seen.extend(page.into_iter().map(|u| u.id));
    }
    let mut expected = vec![zhang.id, li.id, wang.id, gone.id];
    expected.sort();
    let mut got = seen.clone();
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(seen.len(), 4);

    // Traditional and full-width forms find each other.
    let mut chan = new_user("chanwai", "陳偉", sales.id);
    chan.title = "ＰＭ".into();
    let chan = insert(&store, chan).await;
    assert_eq!(names(users::list(&mut r, &search("陈伟")).await.unwrap()), vec!["chanwai"]);
    assert_eq!(names(users::list(&mut r, &search("陳")).await.unwrap()), vec!["chanwai"]);
    assert_eq!(names(users::list(&mut r, &search("pm")).await.unwrap()), vec!["chanwai"]);
    // And by the name's pinyin, whole or by initials.
    assert_eq!(names(users::list(&mut r, &search("ChenWei")).await.unwrap()), vec!["chanwai"]);
    assert_eq!(names(users::list(&mut r, &search("wangw")).await.unwrap()), vec!["wangwu"]);
    assert_eq!(names(users::list(&mut r, &search("cw")).await.unwrap()), vec!["chanwai"]);
    // A key an older version wrote (not folded) is found and rewritten.
    assert!(users::stale_search_keys(&mut r).await.unwrap().is_empty());
    store
        .write(move |tx| Box::pin(async move { users::set_search_key(tx, chan.id, "chanwai\n陳偉\n", None).await }))
        .await
        .unwrap();
    let stale = users::stale_search_keys(&mut r).await.unwrap();
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0].0, chan.id);
    assert!(users::list(&mut r, &search("陈伟")).await.unwrap().is_empty());
    store
        .write(move |tx| {
            let stale = stale.clone();
            Box::pin(async move {
                // Only over the key that was read: a key changed meanwhile is left alone.
                users::set_search_key(tx, stale[0].0, &stale[0].2, Some("something else")).await?;
                assert_eq!(users::stale_search_keys(tx).await?.len(), 1);
                users::set_search_key(tx, stale[0].0, &stale[0].2, Some(&stale[0].1)).await
            })
        })
        .await
        .unwrap();
    assert_eq!(names(users::list(&mut r, &search("陈伟")).await.unwrap()), vec!["chanwai"]);

    // People named by their whole name or its pinyin (`from:` in search), namesakes included.
    let namesake = insert(&store, new_user("chenwei2", "陈伟", sales.id)).await;
    let mut both = vec![chan.id, namesake.id];
    both.sort();
    for name in ["陈伟", "陳偉", "chenwei", "chen wei"] {
        let mut got = users::ids_named(&mut r, name, 10).await.unwrap();
        got.sort();
        assert_eq!(got, both, "{name}");
    }
    assert_eq!(users::ids_named(&mut r, "陈伟", 1).await.unwrap().len(), 1, "at most the limit");
    for name in ["陈", "cw", "pm", "chanwai", "", "%"] {
        assert!(users::ids_named(&mut r, name, 10).await.unwrap().is_empty(), "{name}");
    }
}

pub async fn do_not_disturb_latest_setting_wins(store: Store, _: Sink) {
    use qiao_store::presence;
    let root = seed_org(&store).await;
    let alice = insert(&store, new_user("alice", "Alice", root.id)).await;
    let bob = insert(&store, new_user("bob", "Bob", root.id)).await;
    let carol = insert(&store, new_user("carol", "Carol", root.id)).await;
    // Settings as nodes may write them: out of order, and two at the same moment.
    let settings = [
        (alice.id, true, T0 + 5),
        (alice.id, false, T0 + 3), // older than the one stored: ignored
        (bob.id, true, T0),
        (bob.id, false, T0 + 1),
        (carol.id, false, T0 + 2),
        (carol.id, true, T0 + 2), // a tie: on wins
        (carol.id, false, T0 + 2),
    ];
    for (user, on, at) in settings {
        store
            .write(move |tx| Box::pin(async move { presence::set_do_not_disturb(tx, user, on, at).await }))
            .await
            .unwrap();
    }
    let mut on = presence::do_not_disturb_on(&mut store.reader().await.unwrap()).await.unwrap();
    on.sort_by_key(|(_, at)| *at);
    assert_eq!(on, vec![(carol.id, T0 + 2), (alice.id, T0 + 5)]);
}

pub async fn a_reference_removed_meanwhile_is_a_conflict(store: Store, _: Sink) {
    seed_org(&store).await;
    // A department checked a moment before, deleted before the write.
    let u = new_user("late", "Late", DepartmentId::new());
    let err = store
        .write(move |tx| {
            let u = u.clone();
            Box::pin(async move { users::insert(tx, &u).await })
        })
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict, "{err:?}");
}
