use serde_json::json;

use crate::harness::{TestServer, assert_error};

#[tokio::test]
async fn first_owner_is_created_once_with_the_setup_token() {
    let srv = TestServer::start().await;
    let anon = srv.anon();
    let status = anon.get("/api/v1/setup").await;
    assert_eq!(status.body, json!({"setup_complete": false, "org_name": "Qiao"}));

    let body = |token: &str| json!({"token": token, "username": "boss", "display_name": "老板", "password": "boss-password", "org_name": "桥科技"});
    assert_error(&anon.post("/api/v1/setup", body("wrong-token")).await, 403, "invalid_setup_token");
    // Validation comes before the token is spent.
    let weak = json!({"token": srv.setup_token, "username": "boss", "display_name": "B", "password": "short"});
    let r = anon.post("/api/v1/setup", weak).await;
    assert_error(&r, 422, "invalid_input");
    assert_eq!(r.body["field"], "password");

    let r = anon.post("/api/v1/setup", body(srv.setup_token.as_deref().unwrap())).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["user"]["role"], "owner");
    assert!(r.body["csrf_token"].is_string(), "cookie mode by default");
    assert!(r.body.get("token").is_none(), "the session token is never in a cookie-mode body");
    let cookies: Vec<_> = r.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert!(
        cookies.iter().any(|c| c.starts_with("qiao_session=") && c.contains("HttpOnly") && c.contains("SameSite=Lax"))
    );
    assert!(cookies.iter().any(|c| c.starts_with("qiao_csrf=") && !c.contains("HttpOnly")));

    assert_eq!(anon.get("/api/v1/setup").await.body, json!({"setup_complete": true, "org_name": "桥科技"}));
    // The root department carries the organisation's name.
    let boss = srv.sign_in("boss", "boss-password").await;
    let root = boss.get("/api/v1/org").await.body["root_department_id"].as_str().unwrap().to_owned();
    assert_eq!(boss.get(&format!("/api/v1/departments/{root}")).await.body["department"]["name"], "桥科技");
    assert_error(
        &anon.post("/api/v1/setup", body(srv.setup_token.as_deref().unwrap())).await,
        409,
        "setup_already_done",
    );
}

#[tokio::test]
async fn a_restart_before_setup_issues_a_new_link_and_voids_the_old() {
    let srv = TestServer::start().await;
    let old = srv.setup_token.clone().unwrap();
    let db = srv.stop().await;
    let srv = TestServer::start_with(db, |_| {}).await;
    let new = srv.setup_token.clone().unwrap();
    assert_ne!(old, new);
    let body = |t: &str| json!({"token": t, "username": "boss", "display_name": "Boss", "password": "boss-password"});
    assert_error(&srv.anon().post("/api/v1/setup", body(&old)).await, 403, "invalid_setup_token");
    assert_eq!(srv.anon().post("/api/v1/setup", body(&new)).await.status, 201);
    // After setup, restarts print no link.
    let db = srv.stop().await;
    let srv = TestServer::start_with(db, |_| {}).await;
    assert!(srv.setup_token.is_none());
    srv.sign_in("boss", "boss-password").await;
}

#[tokio::test]
async fn a_second_server_on_the_same_sqlite_file_is_refused() {
    let srv = TestServer::start().await;
    let config = crate::harness::test_config(&srv.db);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = qiao::serve_with(config, listener, async {}, |_| {}).await.unwrap_err();
    assert!(err.message.contains("already using"), "{}", err.message);
    // Nor may an admin command write beside it (it would append events the server never
    // hears of); it says what to do instead, and works once the server stopped.
    let config = crate::harness::test_config(&srv.db);
    let err = qiao::lock_for_admin(&config, "use its setup link").err().unwrap();
    assert!(
        err.message.contains("a Qiao server is running") && err.message.ends_with("use its setup link"),
        "{}",
        err.message
    );
    let db = srv.stop().await;
    assert!(qiao::lock_for_admin(&crate::harness::test_config(&db), "").unwrap().is_some());
}

/// Over https the cookies carry the `__Host-` prefix (a sibling subdomain cannot set such a
/// cookie), and only those are read: a planted plain `qiao_session` signs nobody in.
#[tokio::test]
async fn secure_cookies_are_host_only_and_plain_ones_are_ignored() {
    let srv = TestServer::start_with(qiao_store::testing::TestDb::sqlite(), |c| c.cookie_secure = true).await;
    srv.owner().await;
    let r = srv.anon().post("/api/v1/auth/sign-in", json!({"login": "owner", "password": "owner-password"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let cookies: Vec<_> = r.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    for (name, http_only) in [("__Host-qiao_session=", true), ("__Host-qiao_csrf=", false)] {
        let c = cookies.iter().find(|c| c.starts_with(name)).unwrap_or_else(|| panic!("{name} in {cookies:?}"));
        assert!(c.contains("; Secure") && c.contains("Path=/") && !c.contains("Domain"), "{c}");
        assert_eq!(c.contains("HttpOnly"), http_only, "{c}");
    }
    let session = r.cookie("__Host-qiao_session").unwrap();
    let url = format!("{}/api/v1/me", srv.url);
    let with_cookie = |cookie: String| reqwest::Client::new().get(&url).header("cookie", cookie).send();
    assert_eq!(with_cookie(format!("__Host-qiao_session={session}")).await.unwrap().status(), 200);
    assert_eq!(
        with_cookie(format!("qiao_session={session}")).await.unwrap().status(),
        401,
        "the plain name is not read"
    );
}
