//! Health, readiness, metrics, the OpenAPI document, and conventions every response follows.

use reqwest::Method;
use serde_json::json;

use crate::harness::{TestServer, assert_error};

#[tokio::test]
async fn health_readiness_and_metrics() {
    let srv = TestServer::start().await;
    let anon = srv.anon();
    assert_eq!(anon.get("/healthz").await.body, json!({"status": "ok"}));
    assert_eq!(anon.get("/readyz").await.body, json!({"status": "ok"}));
    let _ = anon.get("/api/v1/setup").await;
    let text = reqwest::get(format!("{}/metrics", srv.url)).await.unwrap().text().await.unwrap();
    assert!(text.contains("qiao_http_requests_total"), "{text}");
    assert!(text.contains("route=\"/api/v1/setup\""));
}

#[tokio::test]
async fn the_served_openapi_document_is_the_committed_one() {
    let srv = TestServer::start().await;
    let served = reqwest::get(format!("{}/api/openapi.json", srv.url)).await.unwrap().text().await.unwrap();
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json")).unwrap();
    assert!(served == committed, "docs/openapi.json is stale: run `QIAO_UPDATE_OPENAPI=1 cargo test -p qiao-api`");
}

#[tokio::test]
async fn every_response_has_a_request_id_and_errors_share_one_shape() {
    let srv = TestServer::start().await;
    let anon = srv.anon();
    let r = anon.get("/api/v1/nope").await;
    assert_error(&r, 404, "not_found");
    assert_eq!(r.headers["x-request-id"].to_str().unwrap(), r.body["request_id"].as_str().unwrap());
    assert_error(&anon.call(Method::PUT, "/api/v1/setup", None).await, 405, "method_not_allowed");
    assert_error(&anon.call(Method::DELETE, "/api/v1/users", None).await, 405, "method_not_allowed");

    // A client-chosen request id is echoed when it is a plain token, replaced otherwise.
    let r = anon.send(anon.request(Method::GET, "/healthz").header("x-request-id", "trace-abc_123")).await;
    assert_eq!(r.headers["x-request-id"], "trace-abc_123");
    let r = anon.send(anon.request(Method::GET, "/healthz").header("x-request-id", "bad id; injected")).await;
    assert_ne!(r.headers["x-request-id"], "bad id; injected");

    let r = anon.get("/api/v1/me").await;
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert_eq!(r.headers["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn browsers_get_the_page_with_a_strict_policy() {
    let srv = TestServer::start().await;
    let res = reqwest::get(format!("{}/setup", srv.url)).await.unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(res.headers()["cross-origin-resource-policy"], "same-origin");
    let html = res.text().await.unwrap();
    assert!(html.contains("Qiao"));
    // The page's script (the web client's, or the built-in page's without one) is served too.
    let src = html.split("<script").nth(1).and_then(|s| s.split("src=\"").nth(1)).and_then(|s| s.split('"').next());
    let js = reqwest::get(format!("{}{}", srv.url, src.expect("a script"))).await.unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    // Client-side routes get the page; unknown API paths stay JSON 404s.
    assert_eq!(reqwest::get(format!("{}/c/some-conversation", srv.url)).await.unwrap().status(), 200);
    assert_eq!(reqwest::get(format!("{}/api/v1/nope", srv.url)).await.unwrap().status(), 404);
}

#[tokio::test]
async fn security_relevant_actions_are_audited() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let _ = srv.anon().post("/api/v1/auth/sign-in", json!({"login": "owner", "password": "wrong-password"})).await;
    let (id, _) = owner.create_user(&srv, "audited", "member", None).await;
    owner.post_empty(&format!("/api/v1/users/{id}/disable")).await;
    let log = owner.get("/api/v1/audit?limit=200").await.body;
    let actions: Vec<&str> = log["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for expected in
        ["org.create", "org.setup_complete", "auth.sign_in_failed", "user.create", "auth.sign_in", "user.disable"]
    {
        assert!(actions.contains(&expected), "{expected} missing from {actions:?}");
    }
    assert_eq!(actions[0], "user.disable", "newest first");
    let text = log.to_string();
    assert!(!text.contains("wrong-password") && !text.contains("audited-password"), "no secrets in the audit log");
}

#[tokio::test]
async fn data_survives_a_restart() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let dept = owner.create_department("持久化", None).await;
    let db = srv.stop().await;
    let srv = TestServer::start_with(db, |_| {}).await;
    let owner = srv.sign_in("owner", "owner-password").await;
    assert_eq!(owner.get(&format!("/api/v1/departments/{dept}")).await.body["department"]["name"], "持久化");
}
