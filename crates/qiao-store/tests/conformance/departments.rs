use qiao_domain::DepartmentId;
use qiao_store::users::NewUser;
use qiao_store::{Store, departments, users};

use crate::{Sink, T0, add_department, seed_org};

pub async fn tree_operations(store: Store, _: Sink) {
    let root = seed_org(&store).await;
    let eng = add_department(&store, root.id, "研发部").await;
    let backend = add_department(&store, eng.id, "Backend").await;
    let sales = add_department(&store, root.id, "Sales").await;

    let mut r = store.reader().await.unwrap();
    assert_eq!(departments::get(&mut r, eng.id).await.unwrap().unwrap(), eng);
    assert!(departments::get(&mut r, DepartmentId::new()).await.unwrap().is_none());
    assert_eq!(departments::list(&mut r).await.unwrap().len(), 4);
    let kids: Vec<_> = departments::children(&mut r, root.id).await.unwrap().into_iter().map(|d| d.name).collect();
    assert_eq!(kids, vec!["Sales", "研发部"]);
    assert_eq!(departments::path(&mut r, backend.id).await.unwrap(), vec![root.id, eng.id, backend.id]);
    assert_eq!(departments::path(&mut r, root.id).await.unwrap(), vec![root.id]);
    assert!(departments::path(&mut r, DepartmentId::new()).await.unwrap().is_empty());
    let mut sub = departments::subtree(&mut r, eng.id).await.unwrap();
    sub.sort();
    let mut expected = vec![eng.id, backend.id];
    expected.sort();
    assert_eq!(sub, expected);
    assert_eq!(departments::height(&mut r, root.id).await.unwrap(), 2);
    assert_eq!(departments::height(&mut r, backend.id).await.unwrap(), 0);
    // Sibling names are unique case-insensitively; the department itself is excluded.
    assert!(departments::name_taken(&mut r, root.id, "sales", None).await.unwrap());
    assert!(!departments::name_taken(&mut r, root.id, "sales", Some(sales.id)).await.unwrap());
    assert!(!departments::name_taken(&mut r, eng.id, "Sales", None).await.unwrap());
    drop(r);

    // Move Backend under Sales and rename it.
    let mut moved = backend.clone();
    moved.parent_id = Some(sales.id);
    moved.name = "后端".into();
    moved.updated_at = T0 + 5;
    let m = moved.clone();
    store
        .write(move |tx| {
            let m = m.clone();
            Box::pin(async move { departments::update(tx, &m).await })
        })
        .await
        .unwrap();
    let mut r = store.reader().await.unwrap();
    assert_eq!(departments::path(&mut r, backend.id).await.unwrap(), vec![root.id, sales.id, backend.id]);
    assert_eq!(departments::get(&mut r, backend.id).await.unwrap().unwrap(), moved);
    drop(r);

    store.write(move |tx| Box::pin(departments::delete(tx, backend.id))).await.unwrap();
    let mut r = store.reader().await.unwrap();
    assert!(departments::get(&mut r, backend.id).await.unwrap().is_none());
}

pub async fn occupancy_counts_children_and_people(store: Store, _: Sink) {
    let root = seed_org(&store).await;
    let eng = add_department(&store, root.id, "Eng").await;
    let ops = add_department(&store, root.id, "Ops").await;
    let mut r = store.reader().await.unwrap();
    assert_eq!(departments::occupancy(&mut r, eng.id).await.unwrap(), 0);
    assert_eq!(departments::occupancy(&mut r, root.id).await.unwrap(), 2);
    drop(r);
    let u = NewUser {
        id: qiao_domain::UserId::new(),
        username: "li".into(),
        email: None,
        display_name: "Li".into(),
        title: String::new(),
        role: qiao_domain::user::Role::Member,
        primary_department_id: eng.id,
        secondary_department_ids: vec![ops.id],
        managed_department_ids: vec![],
        password_hash: "x".into(),
        must_change_password: false,
        now: T0,
    };
    store
        .write(move |tx| {
            let u = u.clone();
            Box::pin(async move { users::insert(tx, &u).await })
        })
        .await
        .unwrap();
    let mut r = store.reader().await.unwrap();
    assert_eq!(departments::occupancy(&mut r, eng.id).await.unwrap(), 1);
    assert_eq!(departments::occupancy(&mut r, ops.id).await.unwrap(), 1, "secondary members count");
}
