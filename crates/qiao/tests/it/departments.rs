//! The department tree over HTTP.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{TestServer, assert_error};
use crate::ws::Ws;

#[tokio::test]
async fn create_rename_move_and_delete() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let org = owner.get("/api/v1/org").await.body;
    let root = org["root_department_id"].as_str().unwrap().to_owned();

    let sh = owner.create_department("上海分公司", None).await;
    let sales = owner.create_department("销售部", Some(&sh)).await;
    let bj = owner.create_department("北京分公司", None).await;
    assert_error(&owner.post("/api/v1/departments", json!({"name": "上海分公司"})).await, 409, "department_name_taken");
    assert_eq!(
        owner.post("/api/v1/departments", json!({"name": "销售部", "parent_id": bj})).await.status,
        201,
        "same name, other parent"
    );

    let d = owner.get(&format!("/api/v1/departments/{sales}")).await.body;
    assert_eq!(d["department"]["name"], "销售部");
    let ancestors: Vec<_> =
        d["ancestors"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ancestors, vec![root.clone(), sh.clone()]);
    let children = owner.get(&format!("/api/v1/departments/{sh}")).await.body["children"].clone();
    assert_eq!(children.as_array().unwrap().len(), 1);

    // Rename, then move: conflicts, cycles and the root are refused.
    assert_eq!(
        owner.patch(&format!("/api/v1/departments/{sales}"), json!({"name": "华东销售"})).await.body["name"],
        "华东销售"
    );
    assert_error(
        &owner.patch(&format!("/api/v1/departments/{sh}"), json!({"parent_id": sales})).await,
        409,
        "department_cycle",
    );
    assert_error(
        &owner.patch(&format!("/api/v1/departments/{sh}"), json!({"parent_id": sh})).await,
        409,
        "department_cycle",
    );
    assert_error(
        &owner.patch(&format!("/api/v1/departments/{root}"), json!({"parent_id": sh})).await,
        409,
        "root_department",
    );
    let r = owner.patch(&format!("/api/v1/departments/{sales}"), json!({"parent_id": bj})).await;
    assert_eq!(r.body["parent_id"], bj.as_str());
    let r = owner
        .patch(&format!("/api/v1/departments/{sales}"), json!({"parent_id": "01a1fccf-0000-7000-8000-000000000000"}))
        .await;
    assert_error(&r, 422, "invalid_input");
    assert_eq!(r.body["field"], "parent_id");

    // Delete only when empty.
    owner.create_user(&srv, "seller", "member", Some(&sales)).await;
    assert_error(&owner.delete(&format!("/api/v1/departments/{bj}")).await, 409, "department_not_empty");
    assert_error(&owner.delete(&format!("/api/v1/departments/{sales}")).await, 409, "department_not_empty");
    assert_error(&owner.delete(&format!("/api/v1/departments/{root}")).await, 409, "root_department");
    assert_eq!(owner.delete(&format!("/api/v1/departments/{sh}")).await.status, 204);
    assert_error(&owner.get(&format!("/api/v1/departments/{sh}")).await, 404, "not_found");

    // A department someone manages stays until they manage another (deleting it would leave
    // them managing nothing).
    let temp = owner.create_department("临时组", None).await;
    let r = owner
        .post(
            "/api/v1/users",
            json!({"username": "tempboss", "display_name": "T", "password": "long-enough", "role": "department_admin",
                   "managed_department_ids": [temp]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_error(&owner.delete(&format!("/api/v1/departments/{temp}")).await, 409, "department_not_empty");

    // Renaming the root renames the organisation: administrators only, even for a department
    // admin who manages the root.
    owner.patch(&format!("/api/v1/departments/{root}"), json!({"name": "桥科技集团"})).await;
    assert_eq!(owner.get("/api/v1/org").await.body["name"], "桥科技集团");
    let r = owner
        .post(
            "/api/v1/users",
            json!({"username": "rootboss", "display_name": "R", "password": "long-enough", "role": "department_admin",
                   "managed_department_ids": [root]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let rootboss = srv.sign_in("rootboss", "long-enough").await;
    let r = rootboss.patch(&format!("/api/v1/departments/{root}"), json!({"name": "别的名字"})).await;
    assert_error(&r, 403, "forbidden");
    assert_eq!(owner.get("/api/v1/org").await.body["name"], "桥科技集团");

    // Someone who manages no department may change none, even by asking for no change; a
    // change to nothing writes nothing (no audit entry).
    let (_, member) = owner.create_user(&srv, "plain", "member", None).await;
    for body in [json!({}), json!({"name": "桥科技集团"}), json!({"parent_id": root})] {
        assert_error(&member.patch(&format!("/api/v1/departments/{root}"), body).await, 403, "forbidden");
    }
    let audit = |log: serde_json::Value| log["items"].as_array().unwrap().len();
    let entries = audit(owner.get("/api/v1/audit?limit=200").await.body);
    let same = owner.patch(&format!("/api/v1/departments/{root}"), json!({"name": "桥科技集团"})).await;
    assert_eq!((same.status, same.body["name"].as_str()), (200, Some("桥科技集团")));
    assert_eq!(owner.patch(&format!("/api/v1/departments/{root}"), json!({})).await.status, 200);
    assert_eq!(audit(owner.get("/api/v1/audit?limit=200").await.body), entries);
    let list = owner.get("/api/v1/departments").await.body["items"].as_array().unwrap().len();
    assert_eq!(list, 5, "the deleted one gone, the managed one kept");
}

#[tokio::test]
async fn secondary_departments_and_members() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let eng = owner.create_department("Engineering", None).await;
    let backend = owner.create_department("Backend", Some(&eng)).await;
    let project = owner.create_department("Project X", None).await;
    let (dev, _) = owner.create_user(&srv, "dev", "member", Some(&backend)).await;
    let (lead, _) = owner.create_user(&srv, "lead", "member", Some(&eng)).await;
    let r = owner.patch(&format!("/api/v1/users/{dev}"), json!({"secondary_department_ids": [project, backend]})).await;
    assert_eq!(r.body["secondary_department_ids"], json!([project]), "the primary is never also secondary");

    // The whole list is capped, however little a change adds; so are managed departments.
    let mut many = Vec::new();
    for i in 0..51 {
        many.push(owner.create_department(&format!("小组 {i}"), Some(&project)).await);
    }
    let r = owner.patch(&format!("/api/v1/users/{lead}"), json!({"secondary_department_ids": many[..20]})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = owner.patch(&format!("/api/v1/users/{lead}"), json!({"secondary_department_ids": many[..21]})).await;
    assert_error(&r, 422, "invalid_input");
    assert_eq!(r.body["field"], "secondary_department_ids");
    // Replacing a full list with another full one is no more than the cap.
    let r = owner.patch(&format!("/api/v1/users/{lead}"), json!({"secondary_department_ids": many[20..40]})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = owner
        .patch(&format!("/api/v1/users/{lead}"), json!({"role": "department_admin", "managed_department_ids": many}))
        .await;
    assert_error(&r, 422, "invalid_input");
    assert_eq!(r.body["field"], "managed_department_ids");
    let r =
        owner.patch(&format!("/api/v1/users/{lead}"), json!({"secondary_department_ids": [], "role": "member"})).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let ids = |r: &crate::harness::Resp| {
        let mut v: Vec<String> =
            r.body["items"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_owned()).collect();
        v.sort();
        v
    };
    let mut both = vec![dev.clone(), lead.clone()];
    both.sort();
    assert_eq!(ids(&owner.get(&format!("/api/v1/departments/{eng}/members")).await), vec![lead.clone()]);
    assert_eq!(ids(&owner.get(&format!("/api/v1/departments/{eng}/members?recursive=true")).await), both);
    assert_eq!(ids(&owner.get(&format!("/api/v1/departments/{project}/members")).await), vec![dev.clone()]);
    assert_eq!(
        ids(&owner.get(&format!("/api/v1/users?department_id={eng}&recursive=true&q=dev")).await),
        vec![dev.clone()]
    );

    // Moving a person changes where they are listed.
    owner
        .patch(&format!("/api/v1/users/{dev}"), json!({"primary_department_id": eng, "secondary_department_ids": []}))
        .await;
    assert_eq!(ids(&owner.get(&format!("/api/v1/departments/{eng}/members")).await), both);
    assert!(ids(&owner.get(&format!("/api/v1/departments/{project}/members")).await).is_empty());
    assert_error(
        &owner.get("/api/v1/departments/01a1fccf-0000-7000-8000-000000000000/members").await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn deleting_a_linked_department_updates_the_channels_that_linked_it() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let eng = owner.create_department("研发中心", None).await;
    let temp = owner.create_department("临时组", None).await;
    let r = owner
        .post(
            "/api/v1/conversations",
            json!({"kind": "project", "name": "跨部门项目", "member_ids": [], "departments": [
                {"department_id": eng, "include_subdepartments": true},
                {"department_id": temp, "include_subdepartments": false}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let p = r.body["conversation"]["id"].as_str().unwrap().to_owned();
    let mut ws = Ws::connect(&srv.url, owner.token(), None).await;

    // The (empty) department goes, and its link with it: the channel's members are told, with
    // the channel as it is now, as when its departments are changed by hand.
    assert_eq!(owner.delete(&format!("/api/v1/departments/{temp}")).await.status, 204);
    // The first one waited for, then anything else that came with it.
    let mut events = vec![ws.expect_event("conversation.updated").await];
    events.extend(ws.drain_events(Duration::from_millis(300)).await);
    let updates: Vec<&Value> = events
        .iter()
        .filter(|e| e["data"]["type"] == "conversation.updated" && e["conversation_id"] == p.as_str())
        .collect();
    assert_eq!(updates.len(), 1, "{events:?}");
    let linked = &updates[0]["data"]["conversation"]["linked_departments"];
    assert_eq!(*linked, json!([{"department_id": eng, "include_subdepartments": true}]));
    let now = owner.get(&format!("/api/v1/conversations/{p}")).await;
    assert_eq!(now.status, 200, "{}", now.body);
    assert_eq!(now.body["conversation"]["linked_departments"], *linked);
    assert_eq!(now.body["conversation"]["last_seq"], updates[0]["seq"], "the event took the channel's next number");
}
