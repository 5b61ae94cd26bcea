//! Who may administer what, over HTTP.

use serde_json::{Value, json};

use crate::harness::{TestServer, assert_error};

#[tokio::test]
async fn members_cannot_administer() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let dept = owner.create_department("研发部", None).await;
    let (other, _) = owner.create_user(&srv, "colleague", "member", None).await;
    let (_, member) = owner.create_user(&srv, "member", "member", Some(&dept)).await;

    assert_error(&member.post("/api/v1/departments", json!({"name": "Mine"})).await, 403, "forbidden");
    assert_error(
        &member.patch(&format!("/api/v1/departments/{dept}"), json!({"name": "Renamed"})).await,
        403,
        "forbidden",
    );
    assert_error(&member.delete(&format!("/api/v1/departments/{dept}")).await, 403, "forbidden");
    assert_error(&member.post("/api/v1/users", json!({"username": "x1", "display_name": "X"})).await, 403, "forbidden");
    assert_error(&member.patch(&format!("/api/v1/users/{other}"), json!({"title": "Boss"})).await, 403, "forbidden");
    for action in ["disable", "enable", "reset-password"] {
        assert_error(&member.post_empty(&format!("/api/v1/users/{other}/{action}")).await, 403, "forbidden");
    }
    assert_error(&member.patch("/api/v1/org", json!({"name": "Mine now"})).await, 403, "forbidden");
    assert_error(&member.get("/api/v1/audit").await, 403, "forbidden");
    // Reading is fine.
    assert_eq!(member.get("/api/v1/users").await.status, 200);
    assert_eq!(member.get(&format!("/api/v1/users/{other}")).await.status, 200);
    assert_eq!(member.get("/api/v1/departments").await.status, 200);
}

#[tokio::test]
async fn department_admins_act_only_inside_their_subtree() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let eng = owner.create_department("Engineering", None).await;
    let backend = owner.create_department("Backend", Some(&eng)).await;
    let sales = owner.create_department("Sales", None).await;
    let (_, eng_admin) = owner.create_user(&srv, "engadmin", "department_admin", Some(&eng)).await;
    let (sales_person, _) = owner.create_user(&srv, "seller", "member", Some(&sales)).await;
    let (dev, _) = owner.create_user(&srv, "dev", "member", Some(&backend)).await;

    // Inside: create, rename, move, delete departments; create and administer people.
    let infra = eng_admin.create_department("Infra", Some(&eng)).await;
    let r = eng_admin
        .patch(&format!("/api/v1/departments/{infra}"), json!({"name": "基础设施", "parent_id": backend}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = eng_admin.post("/api/v1/users", json!({"username": "newdev", "display_name": "New", "primary_department_id": backend, "password": "newdev-pass"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    // Without a department, new people land in the admin's own.
    let r = eng_admin
        .post("/api/v1/users", json!({"username": "newdev2", "display_name": "New 2", "password": "newdev-pass"}))
        .await;
    assert_eq!(r.body["user"]["primary_department_id"], eng.as_str());
    assert_eq!(eng_admin.patch(&format!("/api/v1/users/{dev}"), json!({"title": "Lead"})).await.status, 200);
    assert_eq!(eng_admin.post_empty(&format!("/api/v1/users/{dev}/disable")).await.status, 200);
    assert_eq!(eng_admin.delete(&format!("/api/v1/departments/{infra}")).await.status, 204);

    // Outside: refused.
    assert_error(
        &eng_admin.post("/api/v1/departments", json!({"name": "Rogue", "parent_id": sales})).await,
        403,
        "forbidden",
    );
    assert_error(
        &eng_admin.patch(&format!("/api/v1/departments/{sales}"), json!({"name": "Mine"})).await,
        403,
        "forbidden",
    );
    assert_error(
        &eng_admin.patch(&format!("/api/v1/departments/{backend}"), json!({"parent_id": sales})).await,
        403,
        "forbidden",
    );
    assert_error(&eng_admin.delete(&format!("/api/v1/departments/{eng}")).await, 403, "forbidden");
    assert_error(
        &eng_admin.patch(&format!("/api/v1/users/{sales_person}"), json!({"title": "X"})).await,
        403,
        "forbidden",
    );
    assert_error(&eng_admin.post_empty(&format!("/api/v1/users/{sales_person}/disable")).await, 403, "forbidden");
    let r = eng_admin.post("/api/v1/users", json!({"username": "spy", "display_name": "Spy", "primary_department_id": sales, "password": "spy-password"})).await;
    assert_error(&r, 403, "forbidden");
    // No promotions beyond member/guest, and no moving people out of the subtree.
    let r = eng_admin
        .post(
            "/api/v1/users",
            json!({"username": "boss2", "display_name": "B", "role": "admin", "password": "boss2-password"}),
        )
        .await;
    assert_error(&r, 403, "forbidden");
    assert_error(
        &eng_admin.patch(&format!("/api/v1/users/{dev}"), json!({"role": "department_admin"})).await,
        403,
        "forbidden",
    );
    assert_error(
        &eng_admin.patch(&format!("/api/v1/users/{dev}"), json!({"primary_department_id": sales})).await,
        403,
        "forbidden",
    );
    assert_error(&eng_admin.patch("/api/v1/org", json!({"name": "X"})).await, 403, "forbidden");
}

#[tokio::test]
async fn admins_cannot_touch_owners() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let owner_id = owner.get("/api/v1/me").await.body["user"]["id"].as_str().unwrap().to_owned();
    let (_, admin) = owner.create_user(&srv, "admin1", "admin", None).await;
    assert_error(&admin.post_empty(&format!("/api/v1/users/{owner_id}/disable")).await, 403, "forbidden");
    assert_error(&admin.post_empty(&format!("/api/v1/users/{owner_id}/reset-password")).await, 403, "forbidden");
    let r = admin
        .post(
            "/api/v1/users",
            json!({"username": "owner3", "display_name": "O", "role": "owner", "password": "owner3-pass"}),
        )
        .await;
    assert_error(&r, 403, "forbidden");
    let (_, member) = admin.create_user(&srv, "m1", "member", None).await;
    let _ = member;
    assert_eq!(admin.patch("/api/v1/org", json!({"name": "Renamed by admin"})).await.status, 200);
    assert_eq!(admin.get("/api/v1/audit").await.status, 200);
}

#[tokio::test]
async fn guests_see_themselves_and_those_they_share_a_conversation_with() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let owner_id = owner.get("/api/v1/me").await.body["user"]["id"].as_str().unwrap().to_owned();
    let (guest_id, guest) = owner.create_user(&srv, "partner", "guest", None).await;
    assert_error(&guest.get("/api/v1/users").await, 403, "forbidden");
    assert_error(&guest.get("/api/v1/departments").await, 403, "forbidden");
    let root = owner.get("/api/v1/org").await.body["root_department_id"].as_str().unwrap().to_owned();
    assert_error(&guest.get(&format!("/api/v1/departments/{root}")).await, 403, "forbidden");
    assert_error(&guest.get(&format!("/api/v1/departments/{root}/members")).await, 403, "forbidden");
    // Creating a department is refused alike under a real and an unknown parent: the answer
    // does not tell which ids exist.
    for parent in [root.clone(), qiao_domain::DepartmentId::new().to_string()] {
        let r = guest.post("/api/v1/departments", json!({"name": "Shadow", "parent_id": parent})).await;
        assert_error(&r, 403, "forbidden");
    }
    // Another person looks like nobody, until they share a conversation (their names are on
    // its messages).
    assert_error(&guest.get(&format!("/api/v1/users/{owner_id}")).await, 404, "not_found");
    assert_eq!(guest.get(&format!("/api/v1/users/{guest_id}")).await.body["role"], "guest");
    let (stranger_id, _) = owner.create_user(&srv, "stranger", "member", None).await;
    crate::conversations::channel(&owner, "private", "Supplier room", &[&guest_id]).await;
    assert_eq!(guest.get(&format!("/api/v1/users/{owner_id}")).await.body["display_name"], "Owner 所有者");
    assert_error(&guest.get(&format!("/api/v1/users/{stranger_id}")).await, 404, "not_found");
    assert_eq!(guest.get("/api/v1/me").await.status, 200);
    assert_eq!(guest.patch("/api/v1/me", json!({"title": "Supplier"})).await.status, 200);
}

/// Linking a department brings its people into a channel they may not leave: those who
/// administer it may link it, its own people only without its subdepartments and never the
/// root (the whole organisation where departments are not set up); keeping or narrowing a
/// link needs no such right.
#[tokio::test]
async fn departments_are_linked_by_their_people_or_their_admins() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let eng = owner.create_department("Engineering", None).await;
    let backend = owner.create_department("Backend", Some(&eng)).await;
    let sales = owner.create_department("Sales 销售", None).await;
    let (_, eng_admin) = owner.create_user(&srv, "engadmin", "department_admin", Some(&eng)).await;
    let (_, ann) = owner.create_user(&srv, "ann", "member", Some(&backend)).await;
    let link = |d: &str, sub: bool| json!({"department_id": d, "include_subdepartments": sub});
    let project = |name: &str, links: Vec<Value>| json!({"kind": "project", "name": name, "departments": links});

    let r = ann.post("/api/v1/conversations", project("Mine", vec![link(&backend, true)])).await;
    assert_error(&r, 403, "forbidden");
    let r = ann.post("/api/v1/conversations", project("Mine", vec![link(&backend, false)])).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let p = r.body["conversation"]["id"].as_str().unwrap().to_owned();
    for other in [&sales, &eng] {
        let r = ann.post("/api/v1/conversations", project("Theirs", vec![link(other, false)])).await;
        assert_error(&r, 403, "forbidden");
        assert_eq!(r.body["field"], "departments");
    }
    let root = owner.get("/api/v1/org").await.body["root_department_id"].as_str().unwrap().to_owned();
    let (_, rooted) = owner.create_user(&srv, "rooted", "member", None).await;
    for sub in [false, true] {
        let r = rooted.post("/api/v1/conversations", project("Everyone", vec![link(&root, sub)])).await;
        assert_error(&r, 403, "forbidden");
    }
    let r = eng_admin.post("/api/v1/conversations", project("Subtree", vec![link(&backend, true)])).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_error(
        &eng_admin.post("/api/v1/conversations", project("Beyond", vec![link(&sales, false)])).await,
        403,
        "forbidden",
    );

    // Changing the links: adding someone else's department is refused and changes nothing;
    // one an administrator added may be kept or taken out.
    let put = |links: Vec<Value>| json!({"departments": links});
    let path = format!("/api/v1/conversations/{p}/departments");
    assert_error(&ann.put(&path, put(vec![link(&backend, true), link(&sales, false)])).await, 403, "forbidden");
    let linked = |v: &Value| v["conversation"]["linked_departments"].as_array().unwrap().len();
    assert_eq!(linked(&ann.get(&format!("/api/v1/conversations/{p}")).await.body), 1);
    let owner_id = owner.get("/api/v1/me").await.body["user"]["id"].as_str().unwrap().to_owned();
    let r = ann.post(&format!("/api/v1/conversations/{p}/members"), json!({"user_ids": [owner_id]})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(owner.put(&path, put(vec![link(&backend, true), link(&sales, true)])).await.status, 200);
    let r = ann.put(&path, put(vec![link(&backend, false), link(&sales, false)])).await;
    assert_eq!(r.status, 200, "narrowing: {}", r.body);
    assert_error(&ann.put(&path, put(vec![link(&backend, false), link(&sales, true)])).await, 403, "forbidden");
    assert_error(&ann.put(&path, put(vec![link(&backend, true)])).await, 403, "forbidden");
    assert_eq!(owner.put(&path, put(vec![link(&backend, true)])).await.status, 200);
    assert_eq!(ann.put(&path, put(vec![link(&backend, true)])).await.status, 200, "keeping a wider link");
}
