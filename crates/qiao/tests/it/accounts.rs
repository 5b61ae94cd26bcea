//! Sign-in, sessions, passwords, CSRF, lockout, disabling.

use std::time::Duration;

use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{Api, Auth, TestServer, assert_error};
use crate::ws::{Ended, Ws, ended, next_json};

#[tokio::test]
async fn sign_in_by_username_or_email_and_sign_out() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let r = owner
        .post("/api/v1/users", json!({"username": "LiLei", "email": "Li.Lei@Example.com", "display_name": "李雷", "password": "lilei-secret"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        (r.body["user"]["username"].as_str(), r.body["user"]["email"].as_str()),
        (Some("lilei"), Some("li.lei@example.com"))
    );

    let by_email = srv.sign_in("LI.LEI@example.com", "lilei-secret").await;
    let me = by_email.get("/api/v1/me").await;
    assert_eq!(me.body["user"]["display_name"], "李雷");
    let by_name = srv.sign_in("lilei", "lilei-secret").await;
    assert_ne!(by_email.token(), by_name.token());

    let anon = srv.anon();
    for (login, password) in [("lilei", "wrong-password"), ("nobody", "whatever-pass"), ("李雷", "x")] {
        assert_error(
            &anon.post("/api/v1/auth/sign-in", json!({"login": login, "password": password})).await,
            401,
            "invalid_credentials",
        );
    }
    // A login longer than any account's is refused before it is counted (and audited).
    let failures = |log: serde_json::Value| {
        log["items"].as_array().unwrap().iter().filter(|e| e["action"] == "auth.sign_in_failed").count()
    };
    let before = failures(owner.get("/api/v1/audit?limit=200").await.body);
    let long = "李".repeat(255);
    let r = anon.post("/api/v1/auth/sign-in", json!({"login": long, "password": "whatever-pass"})).await;
    assert_error(&r, 422, "invalid_input");
    assert_eq!(r.body["field"], "login", "refused by its length alone, as documented");
    assert_eq!(failures(owner.get("/api/v1/audit?limit=200").await.body), before);

    // A device name is a label like any other: one line, at most 100 characters; direction
    // controls are dropped.
    let sign_in =
        |device: &str| json!({"login": "owner", "password": "owner-password", "mode": "bearer", "device_name": device});
    for bad in ["x".repeat(101), "phone\u{7}".to_owned(), "a\nb".to_owned()] {
        let r = anon.post("/api/v1/auth/sign-in", sign_in(&bad)).await;
        assert_error(&r, 422, "invalid_input");
        assert_eq!(r.body["field"], "device_name");
    }
    let r = anon.post("/api/v1/auth/sign-in", sign_in(" 我的\u{202e}电脑 ")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let phone = Api::new(&srv.url, Auth::Bearer(r.body["token"].as_str().unwrap().to_owned()));
    let sessions = phone.get("/api/v1/me/sessions").await.body;
    let mine = sessions["items"].as_array().unwrap().iter().find(|s| s["current"] == true).unwrap().clone();
    assert_eq!(mine["device_name"], "我的电脑");

    assert_eq!(by_email.post_empty("/api/v1/auth/sign-out").await.status, 204);
    assert_error(&by_email.get("/api/v1/me").await, 401, "unauthenticated");
    assert_eq!(by_name.get("/api/v1/me").await.status, 200, "other sessions live on");
}

#[tokio::test]
async fn cookie_sessions_need_the_csrf_header_for_changes() {
    let srv = TestServer::start().await;
    srv.owner().await;
    let r = srv.anon().post("/api/v1/auth/sign-in", json!({"login": "owner", "password": "owner-password"})).await;
    assert_eq!(r.status, 200);
    let session = r.cookie("qiao_session").unwrap();
    let csrf = r.body["csrf_token"].as_str().unwrap().to_owned();
    let browser = srv.anon().with_auth(Auth::Cookie { session: session.clone(), csrf: csrf.clone() });
    assert_eq!(browser.get("/api/v1/me").await.body["csrf_token"], csrf.as_str());
    assert_eq!(browser.patch("/api/v1/me", json!({"title": "CEO"})).await.status, 200);

    let forged = srv.anon().with_auth(Auth::Cookie { session: session.clone(), csrf: "forged".into() });
    assert_eq!(forged.get("/api/v1/me").await.status, 200, "reads need no CSRF token");
    assert_error(&forged.patch("/api/v1/me", json!({"title": "Hacked"})).await, 403, "csrf_mismatch");
    // A cookie token is not a bearer token.
    assert_error(&srv.anon().with_auth(Auth::Bearer(session)).get("/api/v1/me").await, 401, "unauthenticated");
}

#[tokio::test]
async fn repeated_failures_lock_the_account_with_retry_after() {
    let srv =
        TestServer::start_with(qiao_store::testing::TestDb::sqlite(), |c| c.login_max_failures_per_account = 3).await;
    srv.owner().await;
    let anon = srv.anon();
    for _ in 0..3 {
        assert_eq!(
            anon.post("/api/v1/auth/sign-in", json!({"login": "owner", "password": "bad-password"})).await.status,
            401
        );
    }
    // Now even the right password is refused until the lock expires.
    let r = anon.post("/api/v1/auth/sign-in", json!({"login": "owner", "password": "owner-password"})).await;
    assert_error(&r, 429, "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 15 * 60);
    assert_eq!(r.body["retry_after"], retry);
    // Other accounts are not locked out.
    assert_error(
        &anon.post("/api/v1/auth/sign-in", json!({"login": "someone", "password": "x-password"})).await,
        401,
        "invalid_credentials",
    );
}

#[tokio::test]
async fn many_failures_from_one_address_lock_that_address() {
    let srv =
        TestServer::start_with(qiao_store::testing::TestDb::sqlite(), |c| c.login_max_failures_per_address = 4).await;
    srv.owner().await;
    let anon = srv.anon();
    for i in 0..4 {
        let r =
            anon.post("/api/v1/auth/sign-in", json!({"login": format!("user{i}"), "password": "bad-password"})).await;
        assert_eq!(r.status, 401);
    }
    assert_error(
        &anon.post("/api/v1/auth/sign-in", json!({"login": "owner", "password": "owner-password"})).await,
        429,
        "rate_limited",
    );
}

#[tokio::test]
async fn sessions_can_be_listed_and_revoked() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let laptop = srv.sign_in("owner", "owner-password").await;
    let phone = srv.sign_in("owner", "owner-password").await;

    let list = laptop.get("/api/v1/me/sessions").await.body["items"].as_array().unwrap().clone();
    assert_eq!(list.len(), 3);
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);

    let phone_id = phone.get("/api/v1/me").await.body["session_id"].as_str().unwrap().to_owned();
    assert_eq!(laptop.delete(&format!("/api/v1/me/sessions/{phone_id}")).await.status, 204);
    assert_error(&phone.get("/api/v1/me").await, 401, "unauthenticated");
    assert_error(&laptop.delete(&format!("/api/v1/me/sessions/{phone_id}")).await, 404, "not_found");

    let r = laptop.post_empty("/api/v1/me/sessions/revoke-others").await;
    assert_eq!(r.body["revoked"], 1);
    assert_error(&owner.get("/api/v1/me").await, 401, "unauthenticated");
    assert_eq!(laptop.get("/api/v1/me").await.status, 200);

    // Someone else's session id looks like an unknown one.
    let (_, member) = laptop.create_user(&srv, "member1", "member", None).await;
    let member_session = member.get("/api/v1/me").await.body["session_id"].as_str().unwrap().to_owned();
    assert_error(&laptop.delete(&format!("/api/v1/me/sessions/{member_session}")).await, 404, "not_found");
    assert_eq!(member.get("/api/v1/me").await.status, 200);
}

#[tokio::test]
async fn password_change_checks_the_old_one_and_ends_other_sessions() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let other = srv.sign_in("owner", "owner-password").await;
    let r = owner
        .post("/api/v1/me/password", json!({"current_password": "nope-nope", "new_password": "brand-new-pass"}))
        .await;
    assert_error(&r, 403, "wrong_password");
    let r =
        owner.post("/api/v1/me/password", json!({"current_password": "owner-password", "new_password": "short"})).await;
    assert_error(&r, 422, "invalid_input");
    let r = owner
        .post("/api/v1/me/password", json!({"current_password": "owner-password", "new_password": "brand-new-pass"}))
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(owner.get("/api/v1/me").await.status, 200);
    assert_error(&other.get("/api/v1/me").await, 401, "unauthenticated");
    srv.sign_in("owner", "brand-new-pass").await;
    let r = srv.anon().post("/api/v1/auth/sign-in", json!({"login": "owner", "password": "owner-password"})).await;
    assert_error(&r, 401, "invalid_credentials");
}

/// A sign-in with the old password that was being checked while the password changed does
/// not outlive the change: whichever commits first, no session made with the old password is
/// left afterwards. (Each round races the two; the check inside the sign-in's write is what
/// makes every interleaving end this way.)
#[tokio::test]
async fn a_sign_in_racing_a_password_change_never_outlives_it() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let passwords = ["owner-password", "second-password"];
    for round in 0..12 {
        let (old, new) = (passwords[round % 2], passwords[(round + 1) % 2]);
        let anon = srv.anon();
        let change = owner.post("/api/v1/me/password", json!({"current_password": old, "new_password": new}));
        let sign_in = anon.post("/api/v1/auth/sign-in", json!({"login": "owner", "password": old, "mode": "bearer"}));
        let (changed, signed_in) = tokio::join!(change, sign_in);
        assert_eq!(changed.status, 204, "{}", changed.body);
        match signed_in.status {
            200 => {
                let token = signed_in.body["token"].as_str().unwrap();
                let late = srv.anon().with_auth(Auth::Bearer(token.to_owned())).get("/api/v1/me").await;
                assert_error(&late, 401, "unauthenticated");
            }
            _ => assert_error(&signed_in, 401, "invalid_credentials"),
        }
    }
}

/// After the password-hashing parameters change, the first sign-in rehashes the stored
/// password. Devices signing in at that moment all succeed, and so does a password change made
/// meanwhile: a write that finds the hash it checked replaced checks the password against the
/// new one instead of refusing. (Each round starts the server with the other parameters, so
/// every round rehashes.)
#[tokio::test]
async fn sign_ins_racing_a_rehash_all_succeed() {
    let mut srv = TestServer::start().await;
    let device = srv.owner().await.token().to_owned();
    let passwords = ["owner-password", "second-password"];
    let mut current = 0;
    for round in 0..6 {
        let memory = if round % 2 == 0 { 128 } else { 64 };
        srv = TestServer::start_with(srv.stop().await, |c| c.password_memory_kib = memory).await;
        let password = passwords[current];
        let anon = srv.anon();
        let sign_in =
            || anon.post("/api/v1/auth/sign-in", json!({"login": "owner", "password": password, "mode": "bearer"}));
        if round % 3 != 2 {
            let (a, b, c, d) = tokio::join!(sign_in(), sign_in(), sign_in(), sign_in());
            for r in [&a, &b, &c, &d] {
                assert_eq!(r.status, 200, "round {round}: {}", r.body);
            }
        } else {
            // A password change racing sign-ins that rehash the password it checks.
            let next = passwords[1 - current];
            let device = srv.anon().with_auth(Auth::Bearer(device.clone()));
            let change =
                device.post("/api/v1/me/password", json!({"current_password": password, "new_password": next}));
            let (changed, a, b) = tokio::join!(change, sign_in(), sign_in());
            assert_eq!(changed.status, 204, "round {round}: {}", changed.body);
            for r in [&a, &b] {
                assert!(r.status == 200 || r.code() == "invalid_credentials", "round {round}: {}", r.body);
            }
            current = 1 - current;
        }
    }
}

#[tokio::test]
async fn temporary_passwords_must_be_changed_first() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let r = owner.post("/api/v1/users", json!({"username": "newbie", "display_name": "New"})).await;
    assert_eq!(r.status, 201);
    let temp = r.body["temporary_password"].as_str().unwrap().to_owned();
    assert!(r.body["user"]["must_change_password"].as_bool().unwrap());

    let newbie = srv.sign_in("newbie", &temp).await;
    assert_error(&newbie.get("/api/v1/users").await, 403, "password_change_required");
    assert_eq!(newbie.get("/api/v1/me").await.body["user"]["must_change_password"], true);
    // Nor is the realtime stream open to it (it would carry the account's conversations).
    let (mut raw, _) = tokio_tungstenite::connect_async(crate::ws::ws_url(&srv.url)).await.unwrap();
    let hello = json!({"op": "hello", "token": newbie.token(), "resume_from": 0}).to_string();
    raw.send(Message::Text(hello.into())).await.unwrap();
    let refusal = next_json(&mut raw, Duration::from_secs(5)).await.unwrap();
    assert_eq!(refusal["code"], "password_change_required", "{refusal}");
    assert!(matches!(ended(&mut raw, Duration::from_secs(5)).await, Ended::Closed(Some(4001))));
    let r =
        newbie.post("/api/v1/me/password", json!({"current_password": temp, "new_password": "my-own-password"})).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(newbie.get("/api/v1/users").await.status, 200);
    Ws::connect(&srv.url, newbie.token(), None).await;

    // An administrator's reset ends sessions and imposes a new temporary password.
    let id = newbie.get("/api/v1/me").await.body["user"]["id"].as_str().unwrap().to_owned();
    let r = owner.post_empty(&format!("/api/v1/users/{id}/reset-password")).await;
    let temp2 = r.body["temporary_password"].as_str().unwrap().to_owned();
    assert_error(&newbie.get("/api/v1/me").await, 401, "unauthenticated");
    let again = srv.sign_in("newbie", &temp2).await;
    assert_error(&again.get("/api/v1/departments").await, 403, "password_change_required");
}

#[tokio::test]
async fn disabling_ends_sessions_at_once_and_blocks_sign_in() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let (id, member) = owner.create_user(&srv, "leaver", "member", None).await;
    let second_device = srv.sign_in("leaver", "leaver-password").await;
    assert_eq!(member.get("/api/v1/me").await.status, 200);

    let r = owner.post_empty(&format!("/api/v1/users/{id}/disable")).await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("disabled")));
    for client in [&member, &second_device] {
        assert_error(&client.get("/api/v1/me").await, 401, "unauthenticated");
    }
    let r = srv.anon().post("/api/v1/auth/sign-in", json!({"login": "leaver", "password": "leaver-password"})).await;
    assert_error(&r, 403, "account_disabled");
    // Disabled people leave the default directory view.
    let list = owner.get("/api/v1/users").await;
    assert!(!list.body["items"].as_array().unwrap().iter().any(|u| u["id"] == id.as_str()));
    let list = owner.get("/api/v1/users?include_disabled=true").await;
    assert!(list.body["items"].as_array().unwrap().iter().any(|u| u["id"] == id.as_str()));

    assert_eq!(owner.post_empty(&format!("/api/v1/users/{id}/enable")).await.body["status"], "active");
    srv.sign_in("leaver", "leaver-password").await;
}

#[tokio::test]
async fn the_organisation_always_keeps_an_owner() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let me = owner.get("/api/v1/me").await.body["user"]["id"].as_str().unwrap().to_owned();
    assert_error(&owner.post_empty(&format!("/api/v1/users/{me}/disable")).await, 403, "forbidden");
    assert_error(&owner.patch(&format!("/api/v1/users/{me}"), json!({"role": "admin"})).await, 403, "forbidden");

    // Two owners demote each other at the same moment: exactly one demotion wins.
    let (second, second_api) = owner.create_user(&srv, "owner2", "owner", None).await;
    let (demote_second, demote_first) = (format!("/api/v1/users/{second}"), format!("/api/v1/users/{me}"));
    let (a, b) = tokio::join!(
        owner.patch(&demote_second, json!({"role": "admin"})),
        second_api.patch(&demote_first, json!({"role": "admin"})),
    );
    let statuses = [a.status, b.status];
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?} {} {}", a.body, b.body);
    for r in [&a, &b] {
        assert!(
            r.status == 200
                || (r.status, r.code()) == (409, "last_owner")
                || (r.status, r.code()) == (403, "forbidden"),
            "{}",
            r.body
        );
    }
    let owners = owner.get("/api/v1/users").await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["role"] == "owner")
        .count();
    assert_eq!(owners, 1);
}

#[tokio::test]
async fn profile_updates_and_duplicate_names() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let r = owner.patch("/api/v1/me", json!({"display_name": "  王总  ", "title": "总经理"})).await;
    assert_eq!((r.body["display_name"].as_str(), r.body["title"].as_str()), (Some("王总"), Some("总经理")));
    assert_error(&owner.patch("/api/v1/me", json!({"display_name": ""})).await, 422, "invalid_input");

    owner.create_user(&srv, "taken", "member", None).await;
    let r =
        owner.post("/api/v1/users", json!({"username": "TAKEN", "display_name": "X", "password": "xxxxxxxxxx"})).await;
    assert_error(&r, 409, "username_taken");
    // Names that mentions read as everyone are nobody's.
    for reserved in ["all", "Channel"] {
        let r = owner
            .post("/api/v1/users", json!({"username": reserved, "display_name": "X", "password": "xxxxxxxxxx"}))
            .await;
        assert_error(&r, 422, "invalid_input");
    }
    let (id, _) = owner.create_user(&srv, "other", "member", None).await;
    assert_error(&owner.patch(&format!("/api/v1/users/{id}"), json!({"username": "all"})).await, 422, "invalid_input");
    assert_eq!(owner.patch(&format!("/api/v1/users/{id}"), json!({"email": "dup@example.com"})).await.status, 200);
    let r = owner
        .post(
            "/api/v1/users",
            json!({"username": "third", "email": "DUP@example.com", "display_name": "X", "password": "xxxxxxxxxx"}),
        )
        .await;
    assert_error(&r, 409, "email_taken");
    // `null` removes the e-mail; absent leaves it.
    assert_eq!(
        owner.patch(&format!("/api/v1/users/{id}"), json!({"title": "T"})).await.body["email"],
        "dup@example.com"
    );
    assert!(owner.patch(&format!("/api/v1/users/{id}"), json!({"email": null})).await.body["email"].is_null());
}

/// Each password check costs a hash: an account's holder signing in (or changing the
/// password) in a loop is held to a budget, like any repeated action.
#[tokio::test]
async fn password_checks_of_one_account_have_a_budget() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    owner.create_user(&srv, "looper", "member", None).await;
    let anon = srv.anon();
    let mut refused = None;
    let started = std::time::Instant::now();
    for i in 0..120 {
        let r = anon
            .post("/api/v1/auth/sign-in", json!({"login": "looper", "password": "looper-password", "mode": "bearer"}))
            .await;
        if r.status != 200 {
            refused = Some((i, r));
            break;
        }
    }
    let (i, r) = refused.expect("never refused");
    assert_error(&r, 429, "rate_limited");
    // A burst of 60, and one more every 2 s it took (a slow machine takes longer).
    let allowed = 63 + started.elapsed().as_secs() / 2;
    assert!((59..=allowed).contains(&i), "refused after {i}, {allowed} at most");
    // Others are not held to it.
    srv.sign_in("owner", "owner-password").await;
}

/// An administrator demoted while their request runs does not act with the old role: a
/// password reset racing its giver's demotion commits before the demotion or not at all
/// (the commit order is the order of their `user.updated` events).
#[tokio::test]
async fn an_admin_demoted_meanwhile_does_not_act_as_one() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let (helper_id, helper) = owner.create_user(&srv, "helper", "admin", None).await;
    let mut ws = Ws::connect(&srv.url, owner.token(), None).await;
    for round in 0..8 {
        let (target, _) = owner.create_user(&srv, &format!("staff{round}"), "member", None).await;
        let helper_path = format!("/api/v1/users/{helper_id}");
        let demote = owner.patch(&helper_path, json!({"role": "member"}));
        let reset_path = format!("/api/v1/users/{target}/reset-password");
        let reset = helper.post_empty(&reset_path);
        let (demoted, reset) = tokio::join!(demote, reset);
        assert_eq!(demoted.status, 200, "{}", demoted.body);
        let mut reset_first = false;
        loop {
            let v = ws.expect(10, "the demotion", |v| v["data"]["type"] == "user.updated").await;
            let who = v["data"]["user"]["id"].as_str().unwrap_or_default().to_owned();
            reset_first |= who == target;
            if who == helper_id {
                break;
            }
        }
        if reset.status == 200 {
            assert!(reset_first, "round {round}: a reset committed after its giver's demotion");
        } else {
            assert_error(&reset, 403, "forbidden");
        }
        assert_eq!(owner.patch(&helper_path, json!({"role": "admin"})).await.status, 200);
        let _ = ws.expect(10, "the promotion", |v| v["data"]["user"]["id"] == helper_id).await;
    }
}
