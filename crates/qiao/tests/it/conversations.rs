//! Conversations over HTTP: kinds, visibility, membership, department channels.

use serde_json::{Value, json};

use crate::harness::{Api, TestServer, assert_error};

pub async fn channel(api: &Api, kind: &str, name: &str, members: &[&str]) -> String {
    let r = api.post("/api/v1/conversations", json!({"kind": kind, "name": name, "member_ids": members})).await;
    assert_eq!(r.status, 201, "create {kind} {name}: {}", r.body);
    r.body["conversation"]["id"].as_str().unwrap().to_owned()
}

fn ids(v: &Value) -> Vec<String> {
    v["items"].as_array().unwrap().iter().map(|c| c["conversation"]["id"].as_str().unwrap().to_owned()).collect()
}

async fn member_ids(api: &Api, conversation: &str) -> Vec<String> {
    let r = api.get(&format!("/api/v1/conversations/{conversation}/members?limit=200")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut v: Vec<String> =
        r.body["items"].as_array().unwrap().iter().map(|m| m["user_id"].as_str().unwrap().to_owned()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn private_channels_are_invisible_to_outsiders() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let (_, alice) = owner.create_user(&srv, "alice", "member", None).await;
    let (bob_id, bob) = owner.create_user(&srv, "bob", "member", None).await;
    let secret = channel(&alice, "private", "机密项目", &[]).await;
    let public = channel(&alice, "public", "General", &[]).await;

    // Outsiders get exactly the answer a nonexistent conversation gets.
    let nowhere = "01a1fccf-0000-7000-8000-0000000000ff";
    for id in [secret.as_str(), nowhere] {
        for (method, path, body) in [
            ("GET", format!("/api/v1/conversations/{id}"), None),
            ("GET", format!("/api/v1/conversations/{id}/messages"), None),
            ("GET", format!("/api/v1/conversations/{id}/members"), None),
            ("POST", format!("/api/v1/conversations/{id}/join"), None),
            ("POST", format!("/api/v1/conversations/{id}/messages"), Some(json!({"body": "hi"}))),
            ("PATCH", format!("/api/v1/conversations/{id}"), Some(json!({"topic": "x"}))),
        ] {
            let r = bob.call(method.parse().unwrap(), &path, body).await;
            assert_error(&r, 404, "not_found");
            assert_eq!(r.body["message"], "Not found.", "{method} {path}");
        }
    }
    // Not even the owner can look into it.
    assert_error(&owner.get(&format!("/api/v1/conversations/{secret}")).await, 404, "not_found");

    // A public channel can be previewed and joined, but not posted in before joining.
    assert_eq!(bob.get(&format!("/api/v1/conversations/{public}")).await.body["me"], Value::Null);
    assert_error(
        &bob.post(&format!("/api/v1/conversations/{public}/messages"), json!({"body": "hi"})).await,
        403,
        "forbidden",
    );
    assert!(bob.get(&format!("/api/v1/conversations/{public}/messages")).await.status == 200);
    let joined = bob.post_empty(&format!("/api/v1/conversations/{public}/join")).await;
    assert_eq!(joined.body["me"]["role"], "member");
    assert_eq!(bob.post(&format!("/api/v1/conversations/{public}/messages"), json!({"body": "hi"})).await.status, 201);

    // Invited, Bob sees the private channel.
    let r = alice.post(&format!("/api/v1/conversations/{secret}/members"), json!({"user_ids": [bob_id]})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(ids(&bob.get("/api/v1/conversations").await.body).contains(&secret));
    let browse = bob.get("/api/v1/conversations/browse").await.body;
    assert_eq!(ids(&browse), vec![public.clone()], "only public channels are browsable");

    // Browsing finds a channel by its name's pinyin and across traditional and simplified
    // characters: xmz, "xiang mu", 项目 (simplified) all find 項目組.
    let project = channel(&alice, "public", "項目組 Alpha", &[]).await;
    for q in ["xmz", "xiang%20mu", "%E9%A1%B9%E7%9B%AE", "ALPHA"] {
        let found = bob.get(&format!("/api/v1/conversations/browse?q={q}")).await.body;
        assert_eq!(ids(&found), vec![project.clone()], "{q}");
    }
}

#[tokio::test]
async fn direct_messages_are_one_per_pair() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let (alice_id, alice) = owner.create_user(&srv, "alice", "member", None).await;
    let (bob_id, bob) = owner.create_user(&srv, "bob", "member", None).await;
    let (carol_id, _) = owner.create_user(&srv, "carol", "member", None).await;

    let first = alice.post("/api/v1/conversations/dm", json!({"user_id": bob_id})).await;
    assert_eq!(first.status, 201);
    let again = bob.post("/api/v1/conversations/dm", json!({"user_id": alice_id})).await;
    assert_eq!(again.status, 200, "the same DM from the other side");
    assert_eq!(first.body["conversation"]["id"], again.body["conversation"]["id"]);
    let mut participants: Vec<String> = again.body["conversation"]["participant_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    participants.sort();
    let mut expected = vec![alice_id.clone(), bob_id.clone()];
    expected.sort();
    assert_eq!(participants, expected);
    // Concurrent first use still yields one DM.
    let (x, y) = tokio::join!(
        alice.post("/api/v1/conversations/dm", json!({"user_id": carol_id})),
        alice.post("/api/v1/conversations/dm", json!({"user_id": carol_id})),
    );
    assert_eq!(x.body["conversation"]["id"], y.body["conversation"]["id"]);
    let dm = first.body["conversation"]["id"].as_str().unwrap().to_owned();
    assert_error(&alice.post_empty(&format!("/api/v1/conversations/{dm}/leave")).await, 403, "forbidden");
    assert_error(
        &alice.post(&format!("/api/v1/conversations/{dm}/members"), json!({"user_ids": [carol_id]})).await,
        403,
        "forbidden",
    );
    assert_error(
        &alice.post("/api/v1/conversations/dm", json!({"user_id": "01a1fccf-0000-7000-8000-0000000000ff"})).await,
        422,
        "invalid_input",
    );
    // A note to self.
    let me = alice.post("/api/v1/conversations/dm", json!({"user_id": alice_id})).await;
    assert_eq!(me.body["conversation"]["member_count"], 1);
}

#[tokio::test]
async fn group_dms_hold_three_to_fifty() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let mut people = Vec::new();
    for i in 0..50 {
        let r = owner
            .post(
                "/api/v1/users",
                json!({"username": format!("p{i}"), "display_name": format!("P{i}"), "password": "long-enough"}),
            )
            .await;
        people.push(r.body["user"]["id"].as_str().unwrap().to_owned());
    }
    assert_error(
        &owner.post("/api/v1/conversations/group", json!({"user_ids": [people[0]]})).await,
        422,
        "invalid_input",
    );
    assert_error(&owner.post("/api/v1/conversations/group", json!({"user_ids": people})).await, 422, "invalid_input");
    let r = owner.post("/api/v1/conversations/group", json!({"user_ids": &people[..49], "name": "午餐小分队"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["conversation"]["member_count"], 50);
    let g = r.body["conversation"]["id"].as_str().unwrap().to_owned();
    assert_error(
        &owner.post(&format!("/api/v1/conversations/{g}/members"), json!({"user_ids": [people[49]]})).await,
        422,
        "invalid_input",
    );
    // Anyone in a group DM may rename it.
    let p0 = srv.sign_in("p0", "long-enough").await;
    assert_eq!(p0.patch(&format!("/api/v1/conversations/{g}"), json!({"name": "晚餐小分队"})).await.status, 200);
    // Someone added later finds what was said before as history, not as unread (or mentions).
    owner.post(&format!("/api/v1/conversations/{g}/messages"), json!({"body": "@all 集合"})).await;
    assert_eq!(p0.post_empty(&format!("/api/v1/conversations/{g}/leave")).await.status, 204);
    let r = owner.post(&format!("/api/v1/conversations/{g}/members"), json!({"user_ids": [people[49]]})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let p49 = srv.sign_in("p49", "long-enough").await;
    let mine = &p49.get(&format!("/api/v1/conversations/{g}")).await.body["me"];
    assert_eq!((mine["unread_count"].as_i64(), mine["mention_count"].as_i64()), (Some(0), Some(0)), "{mine}");
    // Group DMs have no roles.
    let r = owner
        .post(&format!("/api/v1/conversations/{g}/members"), json!({"user_ids": [people[1]], "role": "admin"}))
        .await;
    assert_error(&r, 422, "invalid_input");
}

#[tokio::test]
async fn concurrent_additions_never_take_a_group_dm_past_fifty() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let mut people = Vec::new();
    for i in 0..56 {
        let r = owner
            .post(
                "/api/v1/users",
                json!({"username": format!("p{i}"), "display_name": format!("P{i}"), "password": "long-enough"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        people.push(r.body["user"]["id"].as_str().unwrap().to_owned());
    }
    // 49 of 50: room for one more, and eight people added at once, each fitting alone.
    let r = owner.post("/api/v1/conversations/group", json!({"user_ids": &people[..48]})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["conversation"]["member_count"], 49);
    let g = r.body["conversation"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/conversations/{g}/members");
    let mut tries = tokio::task::JoinSet::new();
    for p in &people[48..] {
        let (api, path, body) = (owner.clone(), path.clone(), json!({"user_ids": [p]}));
        tries.spawn(async move { api.post(&path, body).await });
    }
    let mut answers = Vec::new();
    while let Some(r) = tries.join_next().await {
        answers.push(r.unwrap());
    }
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "exactly one fits: {statuses:?}");
    for r in answers.iter().filter(|r| r.status != 200) {
        assert_error(r, 422, "invalid_input");
    }
    let now = owner.get(&format!("/api/v1/conversations/{g}")).await;
    assert_eq!(now.body["conversation"]["member_count"], 50, "{}", now.body);
    assert_eq!(member_ids(&owner, &g).await.len(), 50);
}

#[tokio::test]
async fn announcement_channels_restrict_posting_not_reacting() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let (reader_id, reader) = owner.create_user(&srv, "reader", "member", None).await;
    let (poster_id, poster) = owner.create_user(&srv, "poster", "member", None).await;
    assert_error(
        &reader.post("/api/v1/conversations", json!({"kind": "announcement", "name": "News"})).await,
        403,
        "forbidden",
    );
    let news = channel(&owner, "announcement", "公司公告", &[&reader_id, &poster_id]).await;
    let msg = owner.post(&format!("/api/v1/conversations/{news}/messages"), json!({"body": "放假通知"})).await;
    assert_eq!(msg.status, 201);
    let msg_id = msg.body["id"].as_str().unwrap().to_owned();
    assert_error(
        &reader.post(&format!("/api/v1/conversations/{news}/messages"), json!({"body": "me too"})).await,
        403,
        "forbidden",
    );
    assert_eq!(reader.post(&format!("/api/v1/messages/{msg_id}/reactions"), json!({"emoji": "👍"})).await.status, 200);
    assert_error(&reader.put_empty(&format!("/api/v1/messages/{msg_id}/pin")).await, 403, "forbidden");
    // Chosen posters may post.
    let r = owner.patch(&format!("/api/v1/conversations/{news}/members/{poster_id}"), json!({"role": "poster"})).await;
    assert_eq!(r.body["role"], "poster");
    let weekly = poster.post(&format!("/api/v1/conversations/{news}/messages"), json!({"body": "周报"})).await;
    assert_eq!(weekly.status, 201);
    let weekly = format!("/api/v1/messages/{}", weekly.body["id"].as_str().unwrap());
    assert_eq!(poster.patch(&weekly, json!({"body": "周报（更新）"})).await.status, 200);
    // Set back to member, a poster may no longer rewrite what they announced.
    let r = owner.patch(&format!("/api/v1/conversations/{news}/members/{poster_id}"), json!({"role": "member"})).await;
    assert_eq!(r.body["role"], "member");
    assert_error(&poster.patch(&weekly, json!({"body": "<@everyone> 改了"})).await, 403, "forbidden");
    assert_eq!(poster.get(&weekly).await.body["body"], "周报（更新）");
    assert_error(
        &owner.patch(&format!("/api/v1/conversations/{news}/members/{reader_id}"), json!({"role": "owner"})).await,
        422,
        "invalid_input",
    );
}

#[tokio::test]
async fn archiving_makes_a_channel_read_only() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let (member_id, member) = owner.create_user(&srv, "mia", "member", None).await;
    let c = channel(&owner, "public", "Old project", &[&member_id]).await;
    let m = member.post(&format!("/api/v1/conversations/{c}/messages"), json!({"body": "last words"})).await;
    let mid = m.body["id"].as_str().unwrap().to_owned();
    assert_error(&member.post_empty(&format!("/api/v1/conversations/{c}/archive")).await, 403, "forbidden");
    let r = owner.post_empty(&format!("/api/v1/conversations/{c}/archive")).await;
    assert!(r.body["archived_at"].is_i64(), "{}", r.body);
    assert_error(
        &member.post(&format!("/api/v1/conversations/{c}/messages"), json!({"body": "x"})).await,
        403,
        "forbidden",
    );
    assert_error(&member.patch(&format!("/api/v1/messages/{mid}"), json!({"body": "edited"})).await, 403, "forbidden");
    assert_error(
        &member.post(&format!("/api/v1/messages/{mid}/reactions"), json!({"emoji": "👍"})).await,
        403,
        "forbidden",
    );
    assert_eq!(
        member.get(&format!("/api/v1/conversations/{c}/messages")).await.body["items"].as_array().unwrap().len(),
        1
    );
    let browse = member.get("/api/v1/conversations/browse").await.body;
    assert!(ids(&browse).is_empty());
    assert_eq!(ids(&member.get("/api/v1/conversations/browse?include_archived=true").await.body), vec![c.clone()]);
    assert!(owner.post_empty(&format!("/api/v1/conversations/{c}/unarchive")).await.body["archived_at"].is_null());
    assert_eq!(member.post(&format!("/api/v1/conversations/{c}/messages"), json!({"body": "back"})).await.status, 201);
}

#[tokio::test]
async fn inviting_removing_and_leaving() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let (alice_id, alice) = owner.create_user(&srv, "alice", "member", None).await;
    let (bob_id, bob) = owner.create_user(&srv, "bob", "member", None).await;
    let (guest_id, guest) = owner.create_user(&srv, "partner", "guest", None).await;
    let c = channel(&alice, "private", "Vendors", &[&bob_id]).await;
    // Members invite; guests take part but cannot invite or create channels.
    assert_eq!(
        bob.post(&format!("/api/v1/conversations/{c}/members"), json!({"user_ids": [guest_id]})).await.status,
        200
    );
    assert_eq!(guest.post(&format!("/api/v1/conversations/{c}/messages"), json!({"body": "你好"})).await.status, 201);
    assert_error(
        &guest.post(&format!("/api/v1/conversations/{c}/members"), json!({"user_ids": [alice_id]})).await,
        403,
        "forbidden",
    );
    assert_error(&guest.post("/api/v1/conversations", json!({"name": "mine"})).await, 403, "forbidden");
    assert_error(&guest.get("/api/v1/conversations/browse").await, 403, "forbidden");
    // Only channel admins remove others.
    assert_error(&bob.delete(&format!("/api/v1/conversations/{c}/members/{guest_id}")).await, 403, "forbidden");
    assert_eq!(alice.delete(&format!("/api/v1/conversations/{c}/members/{guest_id}")).await.status, 204);
    assert_error(&guest.get(&format!("/api/v1/conversations/{c}/messages")).await, 404, "not_found");
    assert!(guest.get("/api/v1/conversations").await.body["items"].as_array().unwrap().is_empty());
    // Leaving.
    assert_eq!(bob.post_empty(&format!("/api/v1/conversations/{c}/leave")).await.status, 204);
    assert_error(&bob.get(&format!("/api/v1/conversations/{c}")).await, 404, "not_found");
    assert_eq!(member_ids(&alice, &c).await, vec![alice_id.clone()]);
    // Making someone an admin lets them manage.
    let (carol_id, carol) = owner.create_user(&srv, "carol", "member", None).await;
    alice.post(&format!("/api/v1/conversations/{c}/members"), json!({"user_ids": [carol_id], "role": "admin"})).await;
    assert_eq!(
        carol.patch(&format!("/api/v1/conversations/{c}"), json!({"topic": "供应商沟通"})).await.body["topic"],
        "供应商沟通"
    );
    // Adding an admin again (a plain member may invite) does not demote them; only a role
    // given by an admin changes one.
    let (dave_id, dave) = owner.create_user(&srv, "dave", "member", None).await;
    carol.post(&format!("/api/v1/conversations/{c}/members"), json!({"user_ids": [dave_id]})).await;
    let r = dave.post(&format!("/api/v1/conversations/{c}/members"), json!({"user_ids": [alice_id, carol_id]})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = dave
        .post(&format!("/api/v1/conversations/{c}/members"), json!({"user_ids": [carol_id], "role": "member"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let topic = alice.patch(&format!("/api/v1/conversations/{c}"), json!({"topic": "仍是管理员"})).await;
    assert_eq!(topic.status, 200, "{}", topic.body);
    assert_eq!(carol.patch(&format!("/api/v1/conversations/{c}"), json!({"topic": "也是"})).await.status, 200);
    alice.post(&format!("/api/v1/conversations/{c}/members"), json!({"user_ids": [carol_id], "role": "member"})).await;
    assert_error(
        &carol.patch(&format!("/api/v1/conversations/{c}"), json!({"topic": "不再是"})).await,
        403,
        "forbidden",
    );
    // The channel keeps an admin while others are in it: its last one may not leave, step
    // down or be removed until someone else is one.
    let alice_me = format!("/api/v1/conversations/{c}/members/{alice_id}");
    assert_error(&alice.post_empty(&format!("/api/v1/conversations/{c}/leave")).await, 409, "last_channel_admin");
    assert_error(&alice.patch(&alice_me, json!({"role": "member"})).await, 409, "last_channel_admin");
    let again = alice
        .post(&format!("/api/v1/conversations/{c}/members"), json!({"user_ids": [alice_id], "role": "member"}))
        .await;
    assert_error(&again, 409, "last_channel_admin");
    assert_eq!(member_roles(&alice, &c).await[&alice_id], "admin", "nothing changed");
    // Two admins stepping down at the same moment: one of them stays.
    let carol_admin = format!("/api/v1/conversations/{c}/members/{carol_id}");
    assert_eq!(alice.patch(&carol_admin, json!({"role": "admin"})).await.status, 200);
    let (a, b) = tokio::join!(
        alice.patch(&alice_me, json!({"role": "member"})),
        carol.patch(&carol_admin, json!({"role": "member"}))
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{} {}", a.body, b.body);
    let admins: Vec<String> =
        member_roles(&alice, &c).await.into_iter().filter(|(_, r)| r == "admin").map(|(id, _)| id).collect();
    assert_eq!(admins.len(), 1, "{admins:?}");
    // With another admin in place, the last-but-one leaves; alone, the last one may too.
    let (stays, stays_id) = if admins[0] == alice_id { (&alice, &alice_id) } else { (&carol, &carol_id) };
    for (person, id) in [(&alice, &alice_id), (&carol, &carol_id)] {
        if id != stays_id {
            assert_eq!(person.post_empty(&format!("/api/v1/conversations/{c}/leave")).await.status, 204);
        }
    }
    assert_eq!(stays.post_empty(&format!("/api/v1/conversations/{c}/leave")).await.status, 409, "dave is still in");
    assert_eq!(stays.delete(&format!("/api/v1/conversations/{c}/members/{dave_id}")).await.status, 204);
    assert_eq!(stays.post_empty(&format!("/api/v1/conversations/{c}/leave")).await.status, 204, "alone now");
}

async fn member_roles(api: &Api, c: &str) -> std::collections::BTreeMap<String, String> {
    let page = api.get(&format!("/api/v1/conversations/{c}/members")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["user_id"].as_str().unwrap().to_owned(), m["role"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn department_channels_follow_people_and_departments() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let owner_id = owner.get("/api/v1/me").await.body["user"]["id"].as_str().unwrap().to_owned();
    let eng = owner.create_department("研发中心", None).await;
    let backend = owner.create_department("后端组", Some(&eng)).await;
    let sales = owner.create_department("销售部", None).await;
    let (dev_id, dev) = owner.create_user(&srv, "dev", "member", Some(&backend)).await;
    let (seller_id, seller) = owner.create_user(&srv, "seller", "member", Some(&sales)).await;
    let (guest_id, _) = owner.create_user(&srv, "visitor", "guest", Some(&backend)).await;

    let channel_of = |dept: String| {
        let owner = owner.clone();
        async move {
            let all = owner.get("/api/v1/departments").await;
            assert_eq!(all.status, 200);
            // The department channel is found through a member's conversation list.
            let mine = owner.get("/api/v1/conversations").await.body;
            mine["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["conversation"]["department_id"] == dept.as_str())
                .map(|c| c["conversation"]["id"].as_str().unwrap().to_owned())
        }
    };
    // The owner is in the root department: the company-wide channel.
    let root = owner.get("/api/v1/org").await.body["root_department_id"].as_str().unwrap().to_owned();
    let all_hands = channel_of(root.clone()).await.expect("the organisation's channel");
    let mut everyone = vec![owner_id.clone(), dev_id.clone(), seller_id.clone()];
    everyone.sort();
    assert_eq!(member_ids(&owner, &all_hands).await, everyone, "guests are not added through departments");
    let _ = guest_id;

    let dev_channels = |api: Api| async move {
        api.get("/api/v1/conversations").await.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["conversation"]["kind"] == "department")
            .map(|c| c["conversation"]["name"].as_str().unwrap().to_owned())
            .collect::<std::collections::BTreeSet<_>>()
    };
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<std::collections::BTreeSet<_>>();
    assert_eq!(dev_channels(dev.clone()).await, names(&["Qiao", "研发中心", "后端组"]));
    assert_eq!(dev_channels(seller.clone()).await, names(&["Qiao", "销售部"]));

    // Moving a person moves their department channels.
    owner.patch(&format!("/api/v1/users/{dev_id}"), json!({"primary_department_id": sales})).await;
    assert_eq!(dev_channels(dev.clone()).await, names(&["Qiao", "销售部"]));
    // Moving a department carries its people along.
    owner.patch(&format!("/api/v1/users/{dev_id}"), json!({"primary_department_id": backend})).await;
    let r = owner.patch(&format!("/api/v1/departments/{backend}"), json!({"parent_id": sales})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(dev_channels(dev.clone()).await, names(&["Qiao", "销售部", "后端组"]));
    // Renaming follows; members through a department cannot leave.
    owner.patch(&format!("/api/v1/departments/{backend}"), json!({"name": "平台组"})).await;
    assert_eq!(dev_channels(dev.clone()).await, names(&["Qiao", "销售部", "平台组"]));
    let sales_channel = dev.get("/api/v1/conversations").await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["conversation"]["name"] == "销售部")
        .map(|c| c["conversation"]["id"].as_str().unwrap().to_owned())
        .unwrap();
    assert_error(&dev.post_empty(&format!("/api/v1/conversations/{sales_channel}/leave")).await, 403, "forbidden");
    // Disabling someone takes them out; re-enabling brings them back.
    owner.post_empty(&format!("/api/v1/users/{seller_id}/disable")).await;
    assert!(!member_ids(&dev, &sales_channel).await.contains(&seller_id));
    owner.post_empty(&format!("/api/v1/users/{seller_id}/enable")).await;
    assert!(member_ids(&dev, &sales_channel).await.contains(&seller_id));
    // An archived channel takes nobody in through its departments, but those who leave them
    // still go; unarchiving brings in who came meanwhile.
    let links = json!([{"department_id": sales, "include_subdepartments": true}]);
    let r =
        owner.post("/api/v1/conversations", json!({"kind": "project", "name": "销售项目", "departments": links})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let project = r.body["conversation"]["id"].as_str().unwrap().to_owned();
    assert!(member_ids(&owner, &project).await.contains(&seller_id));
    assert_eq!(owner.post_empty(&format!("/api/v1/conversations/{project}/archive")).await.status, 200);
    let (late_id, _) = owner.create_user(&srv, "late", "member", Some(&sales)).await;
    assert!(!member_ids(&owner, &project).await.contains(&late_id), "archived: nobody comes in");
    owner.patch(&format!("/api/v1/users/{seller_id}"), json!({"primary_department_id": root})).await;
    assert!(!member_ids(&owner, &project).await.contains(&seller_id), "archived: leavers still go");
    let r = owner.post_empty(&format!("/api/v1/conversations/{project}/unarchive")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["archived_at"].is_null(), "{}", r.body);
    assert!(member_ids(&owner, &project).await.contains(&late_id), "unarchived: the newcomer is in");
    owner.patch(&format!("/api/v1/users/{seller_id}"), json!({"primary_department_id": sales})).await;
    // A department deleted once empty keeps its channel's history, archived.
    let temp = owner.create_department("临时组", None).await;
    let (t_id, t_api) = owner.create_user(&srv, "temp", "member", Some(&temp)).await;
    assert_eq!(dev_channels(t_api.clone()).await, names(&["Qiao", "临时组"]));
    owner.patch(&format!("/api/v1/users/{t_id}"), json!({"primary_department_id": root})).await;
    assert_eq!(dev_channels(t_api.clone()).await, names(&["Qiao"]));
    assert_eq!(owner.delete(&format!("/api/v1/departments/{temp}")).await.status, 204);
}

#[tokio::test]
async fn project_channels_mix_departments_and_people() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let eng = owner.create_department("Eng", None).await;
    let ops = owner.create_department("Ops", None).await;
    let (a, _) = owner.create_user(&srv, "ann", "member", Some(&eng)).await;
    let (b, b_api) = owner.create_user(&srv, "ben", "member", Some(&ops)).await;
    let (c, c_api) = owner.create_user(&srv, "cat", "member", None).await;
    let r = owner
        .post(
            "/api/v1/conversations",
            json!({"kind": "project", "name": "跨部门项目", "member_ids": [c], "departments": [{"department_id": eng, "include_subdepartments": true}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let p = r.body["conversation"]["id"].as_str().unwrap().to_owned();
    let owner_id = owner.get("/api/v1/me").await.body["user"]["id"].as_str().unwrap().to_owned();
    let mut expect = vec![owner_id.clone(), a.clone(), c.clone()];
    expect.sort();
    assert_eq!(member_ids(&owner, &p).await, expect);
    let r = owner
        .put(
            &format!("/api/v1/conversations/{p}/departments"),
            json!({"departments": [{"department_id": ops, "include_subdepartments": false}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut expect = vec![owner_id, b.clone(), c.clone()];
    expect.sort();
    assert_eq!(member_ids(&owner, &p).await, expect);
    // Someone there through a department and also added directly stays when the department
    // no longer brings them, and may then leave (at once: the permission cache is told).
    assert_eq!(owner.post(&format!("/api/v1/conversations/{p}/members"), json!({"user_ids": [b]})).await.status, 200);
    assert_eq!(b_api.get(&format!("/api/v1/conversations/{p}/messages")).await.status, 200);
    let r = owner.patch(&format!("/api/v1/users/{b}"), json!({"primary_department_id": eng})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(member_ids(&owner, &p).await, expect);
    assert_eq!(b_api.post_empty(&format!("/api/v1/conversations/{p}/leave")).await.status, 204);
    expect.retain(|m| *m != b);
    // A department listed twice (with different settings) is refused, nothing changes.
    let twice = json!({"departments": [{"department_id": eng, "include_subdepartments": false},
        {"department_id": eng, "include_subdepartments": true}]});
    let r = owner.put(&format!("/api/v1/conversations/{p}/departments"), twice.clone()).await;
    assert_error(&r, 422, "invalid_input");
    assert_eq!(r.body["field"], "departments");
    assert_eq!(member_ids(&owner, &p).await, expect);
    let mut create = twice;
    create["kind"] = json!("project");
    create["name"] = json!("重复部门");
    assert_error(&owner.post("/api/v1/conversations", create).await, 422, "invalid_input");
    assert_error(
        &c_api.put(&format!("/api/v1/conversations/{p}/departments"), json!({"departments": []})).await,
        403,
        "forbidden",
    );
    let plain = channel(&owner, "public", "Plain", &[]).await;
    let r = owner.put(&format!("/api/v1/conversations/{plain}/departments"), json!({"departments": []})).await;
    assert_error(&r, 422, "invalid_input");
    // A guest given the channel's admin role still may not bring departments in (it would
    // then see everyone in them), nor remove people.
    let (g, g_api) = owner.create_user(&srv, "partner", "guest", None).await;
    owner.post(&format!("/api/v1/conversations/{p}/members"), json!({"user_ids": [g], "role": "admin"})).await;
    let root = owner.get("/api/v1/org").await.body["root_department_id"].as_str().unwrap().to_owned();
    let everyone = json!({"departments": [{"department_id": root, "include_subdepartments": true}]});
    assert_error(&g_api.put(&format!("/api/v1/conversations/{p}/departments"), everyone).await, 403, "forbidden");
    assert_error(&g_api.delete(&format!("/api/v1/conversations/{p}/members/{c}")).await, 403, "forbidden");
}

/// A channel's only admin disabled, or made a guest, hands it to the member who has been in
/// it longest among those who can act as one, so someone can still manage it.
#[tokio::test]
async fn a_channel_is_handed_over_when_its_admin_can_no_longer_act() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let (alice_id, alice) = owner.create_user(&srv, "alice", "member", None).await;
    let (bob_id, bob) = owner.create_user(&srv, "bob", "member", None).await;
    let (carol_id, _) = owner.create_user(&srv, "carol", "member", None).await;
    let c = channel(&alice, "private", "Handover", &[&bob_id]).await;
    // Carol comes later: bob has been in it longer.
    assert_eq!(
        alice.post(&format!("/api/v1/conversations/{c}/members"), json!({"user_ids": [carol_id]})).await.status,
        200
    );
    assert_eq!(owner.post_empty(&format!("/api/v1/users/{alice_id}/disable")).await.status, 200);
    let roles = member_roles(&bob, &c).await;
    assert_eq!(
        (roles[&alice_id].as_str(), roles[&bob_id].as_str(), roles[&carol_id].as_str()),
        ("member", "admin", "member"),
        "handed over, and the role gone with the person who can no longer act"
    );
    assert_eq!(bob.patch(&format!("/api/v1/conversations/{c}"), json!({"topic": "接手了"})).await.status, 200);
    // Bob made a guest: carol now. His role goes in a public channel too (organisation
    // admins manage those, so nobody is handed it there).
    let open = channel(&bob, "public", "Bob's corner", &[&carol_id]).await;
    assert_eq!(owner.patch(&format!("/api/v1/users/{bob_id}"), json!({"role": "guest"})).await.status, 200);
    let roles = member_roles(&bob, &c).await;
    assert_eq!((roles[&bob_id].as_str(), roles[&carol_id].as_str()), ("member", "admin"));
    let roles = member_roles(&owner, &open).await;
    assert_eq!((roles[&bob_id].as_str(), roles[&carol_id].as_str()), ("member", "member"));
    // Carol, the only admin who can act, cannot leave while others are in it; bob, now a
    // guest, is no admin to keep and leaves.
    let carol = srv.sign_in("carol", "carol-password").await;
    assert_error(&carol.post_empty(&format!("/api/v1/conversations/{c}/leave")).await, 409, "last_channel_admin");
    assert_eq!(bob.post_empty(&format!("/api/v1/conversations/{c}/leave")).await.status, 204);
}

/// An admin who was in a channel only through a department and leaves it with the department
/// (moved out, or the link removed) hands the channel on too: the sync cannot ask them first.
#[tokio::test]
async fn a_channel_whose_admin_a_department_took_away_is_handed_on() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let sales = owner.create_department("Sales", None).await;
    let other = owner.create_department("Support", None).await;
    let (alice_id, _) = owner.create_user(&srv, "alice", "member", Some(&sales)).await;
    let (dora_id, _) = owner.create_user(&srv, "dora", "member", Some(&sales)).await;
    let (carol_id, carol) = owner.create_user(&srv, "carol", "member", None).await;
    for moved in [true, false] {
        let c = channel(&owner, "project", &format!("Deals {moved}"), &[&carol_id]).await;
        let link = json!({"departments": [{"department_id": sales, "include_subdepartments": false}]});
        assert_eq!(owner.put(&format!("/api/v1/conversations/{c}/departments"), link).await.status, 200);
        for who in [&alice_id, &dora_id] {
            let r = owner.patch(&format!("/api/v1/conversations/{c}/members/{who}"), json!({"role": "admin"})).await;
            assert_eq!(r.status, 200, "{}", r.body);
        }
        assert_eq!(owner.post_empty(&format!("/api/v1/conversations/{c}/leave")).await.status, 204);
        if moved {
            // Alice and dora move to Support, one after the other.
            for who in [&alice_id, &dora_id] {
                let r = owner.patch(&format!("/api/v1/users/{who}"), json!({"primary_department_id": other})).await;
                assert_eq!(r.status, 200, "{}", r.body);
            }
        } else {
            // Both go at once with the link, by its last admin's own hand.
            let dora = srv.sign_in("dora", "dora-password").await;
            let r = dora.put(&format!("/api/v1/conversations/{c}/departments"), json!({"departments": []})).await;
            assert_eq!(r.status, 200, "{}", r.body);
        }
        let roles = member_roles(&carol, &c).await;
        assert_eq!(roles.len(), 1, "{roles:?}");
        assert_eq!(roles[&carol_id], "admin", "handed on");
        assert_eq!(carol.patch(&format!("/api/v1/conversations/{c}"), json!({"topic": "接手"})).await.status, 200);
        // (For the next round, back in Sales.)
        for who in [&alice_id, &dora_id] {
            let r = owner.patch(&format!("/api/v1/users/{who}"), json!({"primary_department_id": sales})).await;
            assert_eq!(r.status, 200, "{}", r.body);
        }
    }
    // Everyone there through Sales, and the link moved to Support: one of Support's people
    // takes the channel.
    let (sam_id, sam) = owner.create_user(&srv, "sam", "member", Some(&other)).await;
    let c = channel(&owner, "project", "Moved", &[]).await;
    let link = |d: &str| json!({"departments": [{"department_id": d, "include_subdepartments": false}]});
    assert_eq!(owner.put(&format!("/api/v1/conversations/{c}/departments"), link(&sales)).await.status, 200);
    let r = owner.patch(&format!("/api/v1/conversations/{c}/members/{dora_id}"), json!({"role": "admin"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(owner.post_empty(&format!("/api/v1/conversations/{c}/leave")).await.status, 204);
    // (Dora administers Support too, so she may link it.)
    let r = owner
        .patch(
            &format!("/api/v1/users/{dora_id}"),
            json!({"role": "department_admin", "managed_department_ids": [other]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let dora = srv.sign_in("dora", "dora-password").await;
    let r = dora.put(&format!("/api/v1/conversations/{c}/departments"), link(&other)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let roles = member_roles(&sam, &c).await;
    assert_eq!((roles.len(), roles[&sam_id].as_str()), (1, "admin"), "{roles:?}");
}
