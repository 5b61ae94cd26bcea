//! A sweep over every operation in the OpenAPI document: missing, bad and revoked
//! credentials, malformed and mistyped bodies, oversize bodies, wrong content types,
//! unknown and malformed ids. Every answer must be the documented error shape with a 4xx,
//! never a 5xx. New endpoints are covered automatically.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Api, Auth, Resp, TestServer};
use crate::limits::valid;

const BODY_LIMIT: usize = 16 * 1024;

pub struct Op {
    pub method: Method,
    pub path: String,
    public: bool,
    pub body_schema: Option<Value>,
    has_query: bool,
}

pub fn operations(doc: &Value) -> Vec<Op> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let public = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.as_object().is_some_and(|o| o.is_empty())));
            let body_schema = op["requestBody"]["content"]["application/json"]["schema"]
                .as_object()
                .map(|s| resolve(doc, &Value::Object(s.clone())));
            let has_query = op["parameters"].as_array().is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
            ops.push(Op { method, path: path.clone(), public, body_schema, has_query });
        }
    }
    ops
}

pub fn resolve(doc: &Value, schema: &Value) -> Value {
    match schema["$ref"].as_str() {
        Some(r) => doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")].clone(),
        None => schema.clone(),
    }
}

fn with_id(path: &str, id: &str) -> String {
    with_ids(path, |_, _| Some(id)).expect("every parameter filled")
}

/// `path` with each `{param}` replaced by `id(param, the path segment before it)`; `None`
/// when `id` has none.
pub fn with_ids<'a>(path: &str, id: impl Fn(&str, &str) -> Option<&'a str>) -> Option<String> {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}')? + start;
        let segment = rest[..start].trim_end_matches('/').rsplit('/').next().unwrap_or_default();
        out.push_str(&rest[..start]);
        out.push_str(id(&rest[start + 1..end], segment)?);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// A value of the wrong JSON type for `schema`.
fn wrong_value(schema: &Value) -> Value {
    let ty = schema["type"]
        .as_str()
        .or_else(|| schema["type"].as_array().and_then(|t| t.iter().find_map(|x| x.as_str().filter(|s| *s != "null"))));
    match ty {
        Some("string") => json!(12345),
        Some("integer") | Some("number") => json!("not a number"),
        Some("boolean") => json!("not a boolean"),
        Some("array") => json!({"not": "an array"}),
        _ => json!(["not", "an", "object"]),
    }
}

#[track_caller]
fn check(r: &Resp, what: &str, expected: &[u16]) {
    assert!(r.status < 500, "{what}: server error {}: {}", r.status, r.body);
    assert!(expected.contains(&r.status), "{what}: expected {expected:?}, got {}: {}", r.status, r.body);
    if r.status >= 400 {
        assert!(
            r.body["code"].is_string() && r.body["request_id"].is_string() && r.body["message"].is_string(),
            "{what}: bad error body {}",
            r.body
        );
    }
}

#[tokio::test]
async fn every_operation_rejects_bad_input_cleanly() {
    let srv = TestServer::start_with(qiao_store::testing::TestDb::sqlite(), |c| c.max_body_bytes = BODY_LIMIT).await;
    let owner = srv.owner().await;
    let doc: Value = reqwest::get(format!("{}/api/openapi.json", srv.url)).await.unwrap().json().await.unwrap();

    let revoked = srv.sign_in("owner", "owner-password").await;
    assert_eq!(revoked.post_empty("/api/v1/auth/sign-out").await.status, 204);
    let garbage = srv.anon().with_auth(Auth::Bearer("qiao_not-a-real-token".into()));
    let unknown = "01a1fccf-0000-7000-8000-000000000001";

    let ops = operations(&doc);
    assert!(ops.len() >= 25, "only {} operations found", ops.len());
    for op in &ops {
        let path = with_id(&op.path, unknown);
        let name = format!("{} {}", op.method, op.path);
        let send = |api: &Api, body: Option<Value>| {
            let (api, method, path) = (api.clone(), op.method.clone(), path.clone());
            async move { api.call(method, &path, body).await }
        };

        if !op.public {
            for (who, api) in
                [("no session", srv.anon()), ("garbage token", garbage.clone()), ("revoked session", revoked.clone())]
            {
                let r = send(&api, op.body_schema.as_ref().map(|_| json!({}))).await;
                check(&r, &format!("{name} with {who}"), &[401]);
                assert_eq!(r.body["code"], "unauthenticated", "{name} with {who}");
            }
        }

        if op.path.contains('{') {
            let body = op.body_schema.as_ref().map(|s| valid(&doc, s, "", &|_, _| unknown.to_owned()));
            let r = owner.call(op.method.clone(), &with_id(&op.path, "not-a-uuid"), body.clone()).await;
            check(&r, &format!("{name} with a malformed id"), &[400]);
            let r = owner.call(op.method.clone(), &path, body).await;
            check(&r, &format!("{name} with an unknown id"), &[404]);
        }

        if op.has_query {
            let r = owner.call(op.method.clone(), &format!("{path}?limit=-1"), None).await;
            check(&r, &format!("{name} with limit=-1"), &[400, 404]);
            let r = owner.call(op.method.clone(), &format!("{path}?no_such_parameter=1"), None).await;
            check(&r, &format!("{name} with an unknown parameter"), &[400, 404]);
        }

        let Some(schema) = &op.body_schema else { continue };
        let raw = |bytes: Vec<u8>, content_type: &'static str| {
            let rb = owner.request(op.method.clone(), &path).header("content-type", content_type).body(bytes);
            owner.send(rb)
        };
        check(
            &raw(b"{\"broken\": ".to_vec(), "application/json").await,
            &format!("{name} with malformed JSON"),
            &[400],
        );
        check(
            &raw(b"\xff\xfe\x00garbage".to_vec(), "application/json").await,
            &format!("{name} with binary garbage"),
            &[400],
        );
        check(&raw(b"{}".to_vec(), "text/plain").await, &format!("{name} with text/plain"), &[415]);
        check(&owner.send(owner.request(op.method.clone(), &path)).await, &format!("{name} without a body"), &[415]);
        let big = format!("{{\"x\": \"{}\"}}", "a".repeat(BODY_LIMIT + 1));
        check(&raw(big.into_bytes(), "application/json").await, &format!("{name} with an oversize body"), &[413]);
        for wrong in [json!([]), json!("text"), json!(42), json!(null), json!({"no_such_field": 1})] {
            let r = owner.call(op.method.clone(), &path, Some(wrong.clone())).await;
            check(&r, &format!("{name} with body {wrong}"), &[422]);
        }
        for (field, field_schema) in schema["properties"].as_object().into_iter().flatten() {
            let field_schema = resolve(&doc, field_schema);
            let body = json!({ field.as_str(): wrong_value(&field_schema) });
            let r = owner.call(op.method.clone(), &path, Some(body.clone())).await;
            check(&r, &format!("{name} with {body}"), &[422]);
        }
    }
    // After all that, the server is healthy and the owner can still work.
    assert_eq!(owner.get("/api/v1/me").await.status, 200);
    assert_eq!(srv.anon().get("/readyz").await.status, 200);
}

/// NUL in search texts, filters and cursors is not an error of ours on either engine
/// (PostgreSQL refuses it in text; it used to surface as a 500).
#[tokio::test]
async fn nul_in_search_texts_and_cursors_is_never_a_server_error() {
    let mut engines = vec![qiao_store::testing::TestDb::sqlite()];
    engines.extend(qiao_store::testing::TestDb::postgres().await);
    for db in engines {
        // PostgreSQL's TestDb has no directory: files and the index go to one of the test's.
        let dir = tempfile::tempdir().unwrap();
        let data = db.dir().map_or_else(|| dir.path().to_path_buf(), std::path::Path::to_path_buf);
        let srv = TestServer::start_with(db, move |c| c.data_dir = data).await;
        let owner = srv.owner().await;
        let root = owner.get("/api/v1/departments").await.body["items"][0]["id"].as_str().unwrap().to_owned();
        // A cursor of the right shape whose name holds NUL.
        let cursor = base64_url(json!(["a\u{0}b", "0193f2c1-0000-7000-8000-000000000000"]).to_string().as_bytes());
        for path in [
            "/api/v1/users?q=%00".to_owned(),
            "/api/v1/users?q=a%00b".to_owned(),
            "/api/v1/conversations/browse?q=%00".to_owned(),
            format!("/api/v1/departments/{root}/members?q=%00"),
            "/api/v1/search?q=from%3A%00x".to_owned(),
            "/api/v1/search?q=in%3A%00x%20hello".to_owned(),
            "/api/v1/search?q=a%00b".to_owned(),
            format!("/api/v1/users?cursor={cursor}"),
        ] {
            let r = owner.get(&path).await;
            assert!(r.status < 500, "{path}: {} {}", r.status, r.body);
        }
    }
}

/// Unpadded URL-safe base64 (the cursors' encoding).
fn base64_url(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}
