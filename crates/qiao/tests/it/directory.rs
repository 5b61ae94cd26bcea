//! Directory search and paging.

use std::collections::HashSet;

use serde_json::json;

use crate::harness::{TestServer, assert_error};

#[tokio::test]
async fn search_by_name_username_email_and_title() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    for (username, name, email, title) in [
        ("zhangsan", "张三", "zhang@acme.cn", "产品经理"),
        ("lisi", "李四", "li.si@acme.cn", "Engineer"),
        ("wangwu", "王五", "wang@partner.com", "Sales Director"),
    ] {
        let r = owner
            .post("/api/v1/users", json!({"username": username, "display_name": name, "email": email, "title": title, "password": "long-enough"}))
            .await;
        assert_eq!(r.status, 201);
    }
    let names = |q: &str| {
        let owner = owner.clone();
        let q = q.to_owned();
        async move {
            let url = format!("/api/v1/users?q={}", urlencode(&q));
            let r = owner.get(&url).await;
            assert_eq!(r.status, 200, "{}", r.body);
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["username"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names("张").await, vec!["zhangsan"]);
    assert_eq!(names("LISI").await, vec!["lisi"]);
    assert_eq!(names("partner.com").await, vec!["wangwu"]);
    assert_eq!(names("经理").await, vec!["zhangsan"]);
    assert_eq!(names("director").await, vec!["wangwu"]);
    assert!(names("%").await.is_empty(), "wildcards match literally");
    // Pinyin, whole or as initials, and traditional characters.
    let r = owner
        .post("/api/v1/users", json!({"username": "mei", "display_name": "韓梅梅", "password": "long-enough"}))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(names("hanmeimei").await, vec!["mei"]);
    assert_eq!(names("hmm").await, vec!["mei"]);
    assert_eq!(names("han mei").await, vec!["mei"], "syllables typed apart");
    assert_eq!(names("韩梅").await, vec!["mei"]);
    let long = "x".repeat(101);
    assert_error(&owner.get(&format!("/api/v1/users?q={long}")).await, 400, "invalid_parameter");
}

#[tokio::test]
async fn pages_cover_everyone_once() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    for i in 0..7 {
        let r = owner
            .post(
                "/api/v1/users",
                json!({"username": format!("u{i}"), "display_name": format!("同事 {i}"), "password": "long-enough"}),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &cursor {
            Some(c) => format!("/api/v1/users?limit=3&cursor={c}"),
            None => "/api/v1/users?limit=3".to_owned(),
        };
        let r = owner.get(&url).await;
        pages += 1;
        for u in r.body["items"].as_array().unwrap() {
            assert!(seen.insert(u["id"].as_str().unwrap().to_owned()), "seen twice");
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 8);
    assert_eq!(pages, 3);
    assert_error(&owner.get("/api/v1/users?cursor=garbage").await, 400, "invalid_parameter");
    // An empty cursor is the first page (clients that always send the parameter).
    let first = owner.get("/api/v1/users?limit=3&cursor=").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body["items"].as_array().unwrap().len(), 3);
    assert_error(&owner.get("/api/v1/users?limit=0").await, 400, "invalid_parameter");
    assert_error(&owner.get("/api/v1/users?limit=201").await, 400, "invalid_parameter");
    assert_error(&owner.get("/api/v1/users?limit=ten").await, 400, "invalid_parameter");
    assert_error(&owner.get("/api/v1/users?bogus=1").await, 400, "invalid_parameter");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
