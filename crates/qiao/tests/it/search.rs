//! Search end to end: the index follows what is sent, edited and deleted; results come only
//! from conversations the searcher may read at the moment of the query (those they are in
//! and, for staff, public channels); restarts catch up.

use serde_json::{Value, json};

use crate::harness::{Api, TestServer, assert_error};

/// Polls until the search returns `n` hits (the index follows commits within about a
/// second; the loop is bounded, and generous for a slow, shared machine).
async fn search_until(api: &Api, q: &str, n: usize) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        let r = api.get(&format!("/api/v1/search?q={}", urlencode(q))).await;
        assert_eq!(r.status, 200, "{}", r.body);
        if r.body["items"].as_array().unwrap().len() == n {
            return r.body;
        }
        last = r.body;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("searching {q:?} never gave {n} results; last: {last}");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The highlighted parts of the first hit's snippet.
fn highlighted(found: &Value) -> Vec<&str> {
    found["items"][0]["snippet"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["highlight"] == true)
        .map(|p| p["text"].as_str().unwrap())
        .collect()
}

fn texts(body: &Value) -> Vec<String> {
    body["items"].as_array().unwrap().iter().map(|h| h["message"]["body"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn search_follows_the_store_and_permissions() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let (alice_id, alice) = owner.create_user(&srv, "alice", "member", None).await;
    let (bob_id, bob) = owner.create_user(&srv, "bob", "member", None).await;
    let (_, carol) = owner.create_user(&srv, "carol", "member", None).await;
    let r = owner
        .post("/api/v1/conversations", json!({"name": "华东项目", "kind": "private", "member_ids": [alice_id, bob_id]}))
        .await;
    let private = r.body["conversation"]["id"].as_str().unwrap().to_owned();
    let dm = alice.post("/api/v1/conversations/dm", json!({"user_id": bob_id})).await.body["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let send = |api: &Api, conv: &str, body: &str| {
        let (api, path, body) = (api.clone(), format!("/api/v1/conversations/{conv}/messages"), body.to_owned());
        async move {
            let r = api.post(&path, json!({"body": body})).await;
            assert_eq!(r.status, 201, "{}", r.body);
            r.body["id"].as_str().unwrap().to_owned()
        }
    };
    let report = send(&alice, &private, "上海分公司的季度报告已经上传").await;
    send(&owner, &private, "项目 deadline 改到周五").await;
    send(&bob, &dm, "明天下午开视频会议").await;

    // Found by members, with the match highlighted; invisible to everyone else.
    let found = search_until(&alice, "上海", 1).await;
    assert_eq!(found["total"], 1);
    let marked = highlighted(&found);
    assert_eq!(marked, ["上海"]);
    search_until(&bob, "季度报告", 1).await;
    search_until(&carol, "上海", 0).await;
    search_until(&alice, "视频会议", 1).await;
    search_until(&owner, "视频会议", 0).await; // a DM of two other people
    search_until(&alice, "项目 deadline", 1).await;

    // Traditional characters and full-width letters find their simplified and ASCII forms
    // and back, highlighted as written.
    send(&bob, &dm, "會議紀錄的ＰＤＦ在這裡").await;
    let found = search_until(&alice, "会议纪录 pdf", 1).await;
    let marked = highlighted(&found);
    assert_eq!(marked, ["會議紀錄", "ＰＤＦ"]);
    search_until(&alice, "視頻會議", 1).await;

    // Filters.
    assert_eq!(texts(&search_until(&alice, "from:bob 视频会议", 1).await), ["明天下午开视频会议"]);
    search_until(&alice, "from:alice 会议", 0).await;
    // from: also takes a person's whole name, in either script, or its pinyin.
    assert_eq!(bob.patch("/api/v1/me", json!({"display_name": "韓梅梅"})).await.status, 200);
    for who in ["韩梅梅", "韓梅梅", "hanmeimei", "@HanMeiMei", "\"han mei mei\""] {
        assert_eq!(
            texts(&search_until(&alice, &format!("from:{who} 视频会议"), 1).await),
            ["明天下午开视频会议"],
            "{who}"
        );
    }
    search_until(&alice, "from:hmm 视频会议", 0).await; // initials name too many people
    search_until(&alice, "from:韩梅 视频会议", 0).await; // part of a name is not the name
    search_until(&alice, "in:华东项目 周五", 1).await;
    search_until(&alice, "in:华东项目 会议", 0).await;
    search_until(&alice, "in:華東項目 周五", 1).await; // the name folded like the text
    let upload = alice
        .send(
            alice
                .request(reqwest::Method::POST, &format!("/api/v1/conversations/{private}/files?name=预算表.xlsx"))
                .body("1,2,3"),
        )
        .await;
    let file = upload.body["id"].as_str().unwrap().to_owned();
    let r =
        alice.post(&format!("/api/v1/conversations/{private}/messages"), json!({"body": "", "file_ids": [file]})).await;
    assert_eq!(r.status, 201);
    search_until(&bob, "预算表", 1).await; // file names are searched
    search_until(&bob, "has:file", 1).await;
    search_until(&bob, "after:2020-01-01 上海", 1).await;
    search_until(&bob, "before:2020-01-01 上海", 0).await;

    // Edits and deletions reach the index.
    let r = alice.patch(&format!("/api/v1/messages/{report}"), json!({"body": "北京分公司的季度报告"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    search_until(&bob, "北京", 1).await;
    search_until(&bob, "上海", 0).await;
    assert_eq!(alice.delete(&format!("/api/v1/messages/{report}")).await.status, 204);
    search_until(&bob, "北京", 0).await;

    // Leaving ends access at once.
    search_until(&bob, "deadline", 1).await;
    assert_eq!(bob.post_empty(&format!("/api/v1/conversations/{private}/leave")).await.status, 204);
    search_until(&bob, "deadline", 0).await;

    // Staff may read a public channel without joining it, so they search it too; guests see
    // only what they were invited to.
    let (_, gina) = owner.create_user(&srv, "gina", "guest", None).await;
    let r = owner.post("/api/v1/conversations", json!({"name": "公告板", "kind": "public", "member_ids": []})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let public = r.body["conversation"]["id"].as_str().unwrap().to_owned();
    send(&owner, &public, "年会在杭州举办").await;
    search_until(&carol, "杭州", 1).await;
    search_until(&carol, "in:公告板 杭州", 1).await;
    search_until(&gina, "杭州", 0).await;
    search_until(&gina, "in:公告板 杭州", 0).await;

    // Bad queries are clear errors.
    assert_error(&alice.get("/api/v1/search?q=").await, 400, "invalid_parameter");
    assert_error(&alice.get("/api/v1/search?q=%E3%80%80%20").await, 400, "invalid_parameter");
    assert_error(&alice.get("/api/v1/search?q=%EF%BC%81%EF%BC%9F").await, 422, "invalid_input");
    assert_error(&alice.get("/api/v1/search?q=has:cake").await, 422, "invalid_input");
    assert_error(&alice.get(&format!("/api/v1/search?q={}", "长".repeat(201))).await, 400, "invalid_parameter");
    assert_error(&alice.get("/api/v1/search?q=a&limit=0").await, 400, "invalid_parameter");
    assert_error(&srv.anon().get("/api/v1/search?q=a").await, 401, "unauthenticated");

    // After a restart the index is still there; without it, it is rebuilt from the store.
    let db = srv.stop().await;
    let data = db.dir().unwrap().to_path_buf();
    let srv = TestServer::start_with(db, |_| {}).await;
    let alice = srv.sign_in("alice", "alice-password").await;
    search_until(&alice, "deadline", 1).await;
    let db = srv.stop().await;
    std::fs::remove_dir_all(data.join("search")).unwrap();
    let srv = TestServer::start_with(db, |_| {}).await;
    let alice = srv.sign_in("alice", "alice-password").await;
    search_until(&alice, "deadline", 1).await;
    search_until(&alice, "视频会议", 1).await;
    // A damaged index (here its metadata overwritten) does not stop the server: it is
    // replaced and rebuilt.
    let db = srv.stop().await;
    std::fs::write(data.join("search").join("meta.json"), b"{\"segments\": [broken").unwrap();
    let srv = TestServer::start_with(db, |_| {}).await;
    let alice = srv.sign_in("alice", "alice-password").await;
    search_until(&alice, "deadline", 1).await;
    search_until(&alice, "视频会议", 1).await;
}

/// `before:` and `after:` are the searcher's days when the client gives its UTC offset.
#[tokio::test]
async fn date_filters_are_the_searchers_days() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let c = crate::conversations::channel(&owner, "public", "时区", &[]).await;
    let sent = owner.post(&format!("/api/v1/conversations/{c}/messages"), json!({"body": "时区测试"})).await;
    assert_eq!(sent.status, 201);
    let at = sent.body["created_at"].as_i64().unwrap();
    search_until(&owner, "时区测试", 1).await;
    const DAY: i64 = 86_400_000;
    let count = |q: String, tz: i32| {
        let owner = owner.clone();
        async move {
            let r = owner.get(&format!("/api/v1/search?q={}&tz_offset_minutes={tz}", urlencode(&q))).await;
            assert_eq!(r.status, 200, "{}", r.body);
            r.body["items"].as_array().unwrap().len()
        }
    };
    for tz in [-720, 0, 480, 840] {
        let local_day = (at + i64::from(tz) * 60_000).div_euclid(DAY);
        let date = |d: i64| civil(d);
        assert_eq!(count(format!("时区测试 after:{}", date(local_day - 1)), tz).await, 1, "tz {tz}");
        assert_eq!(count(format!("时区测试 after:{}", date(local_day)), tz).await, 0, "tz {tz}");
        assert_eq!(count(format!("时区测试 before:{}", date(local_day + 1)), tz).await, 1, "tz {tz}");
        assert_eq!(count(format!("时区测试 before:{}", date(local_day)), tz).await, 0, "tz {tz}");
    }
    let r = owner.get("/api/v1/search?q=x&tz_offset_minutes=900").await;
    assert_error(&r, 400, "invalid_parameter");
    assert_eq!(r.body["field"], "tz_offset_minutes");
}

/// YYYY-MM-DD of a day since 1970-01-01 (Howard Hinnant's civil_from_days).
fn civil(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A rebuild killed midway (a restart during a long reindex) goes on from its last commit,
/// ends with every message, and then claims its head as its position.
#[tokio::test]
async fn a_rebuild_killed_midway_goes_on_from_where_it_stopped() {
    let db = qiao_store::testing::TestDb::sqlite();
    let data = db.dir().map(std::path::Path::to_path_buf).unwrap();
    let dir = data.clone();
    let srv = TestServer::start_with(db, move |c| c.data_dir = dir).await;
    let owner = srv.owner().await;
    let c = crate::conversations::channel(&owner, "public", "重建", &[]).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let r =
            owner.post(&format!("/api/v1/conversations/{c}/messages"), json!({"body": format!("重建测试 {i}")})).await;
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    let db = srv.stop().await;
    let mut config = crate::harness::test_config(&db);
    config.data_dir = data;
    let (store, services) = qiao::open_services(&config).await.unwrap();
    let index = services.search.clone();
    let head = qiao_store::events::head(&mut store.reader().await.unwrap()).await.unwrap();
    // What a rebuild killed after its first commit leaves: an index of the messages up to
    // the third, and its progress.
    index.clear().unwrap();
    index.commit_rebuild_progress(head, &ids[2]).unwrap();
    assert_eq!(index.position(), -1, "no position while rebuilding");
    let mut seen = Vec::new();
    qiao_service::search::rebuild(&store, &index, &mut |done, total| seen.push((done, total))).await.unwrap();
    assert_eq!(index.position(), head);
    assert_eq!(index.rebuild_progress(), None);
    // It went on after the third message: the three after it are in, the first three (which
    // the killed run had added, here cleared) are not — a fresh rebuild would hold all six.
    assert_eq!(index.len(), 3, "{seen:?}");
    store.close().await;
}
