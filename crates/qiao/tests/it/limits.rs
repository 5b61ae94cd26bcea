//! The limits the OpenAPI document states (lengths, patterns, ranges, list sizes, allowed
//! values) are the ones the server enforces. For every operation, each body property and
//! query parameter that carries a limit gets values just outside it, in a request that is
//! otherwise valid and aimed at real objects (so that nothing else fails first); each must
//! be refused with a 4xx that names the field. New fields and limits are covered as soon as
//! the document states them.

use reqwest::Method;
use serde_json::{Value, json};

use crate::bad_input::{operations, resolve, with_ids};
use crate::harness::{Api, Resp, TestServer};

/// Real objects for the paths' ids.
struct Fixtures {
    conversation: String,
    message: String,
    user: String,
    /// A second person, for lists that need two.
    other: String,
    department: String,
    file: String,
}

impl Fixtures {
    async fn create(owner: &Api, srv: &TestServer) -> Fixtures {
        let department = owner.create_department("限额测试部", None).await;
        let (user, _) = owner.create_user(srv, "limits.user", "member", Some(&department)).await;
        let (other, _) = owner.create_user(srv, "limits.other", "member", Some(&department)).await;
        let r = owner.post("/api/v1/conversations", json!({"name": "limits", "member_ids": [user]})).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let conversation = r.body["conversation"]["id"].as_str().unwrap().to_owned();
        let r = owner.post(&format!("/api/v1/conversations/{conversation}/messages"), json!({"body": "你好"})).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let message = r.body["id"].as_str().unwrap().to_owned();
        let rb = owner
            .request(Method::POST, &format!("/api/v1/conversations/{conversation}/files?name=notes.txt"))
            .header("content-type", "application/octet-stream")
            .body("meeting notes");
        let r = owner.send(rb).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let file = r.body["id"].as_str().unwrap().to_owned();
        Fixtures { conversation, message, user, other, department, file }
    }

    /// `path` with its ids filled in; `None` when there is no fixture for one.
    fn path(&self, path: &str) -> Option<String> {
        with_ids(path, |param, segment| {
            Some(match (param, segment) {
                ("user_id", _) | (_, "users") => &self.user,
                (_, "conversations") => &self.conversation,
                (_, "messages") => &self.message,
                (_, "departments") => &self.department,
                (_, "files") => &self.file,
                _ => return None,
            })
        })
    }

    /// A real id for a field, guessed from its name (the second item of a list of people is
    /// another person).
    fn id_for(&self, field: &str, index: usize) -> String {
        let id = if field.contains("department") {
            &self.department
        } else if field.contains("file") {
            &self.file
        } else if field.contains("message") {
            &self.message
        } else if field.contains("conversation") {
            &self.conversation
        } else if index % 2 == 1 {
            &self.other
        } else {
            &self.user
        };
        id.clone()
    }
}

/// The schema itself, or its non-null variant when it is nullable through `oneOf`.
fn concrete(doc: &Value, schema: &Value) -> Value {
    let schema = resolve(doc, schema);
    for key in ["oneOf", "anyOf"] {
        if let Some(v) = schema[key].as_array().and_then(|v| v.iter().find(|s| s["type"] != "null")) {
            return concrete(doc, v);
        }
    }
    schema
}

fn is_type(schema: &Value, ty: &str) -> bool {
    schema["type"] == ty || schema["type"].as_array().is_some_and(|t| t.iter().any(|x| x == ty))
}

fn length(schema: &Value, key: &str) -> Option<usize> {
    schema[key].as_u64().map(|n| n as usize)
}

/// Strings tried as valid values, the first the schema allows is used.
const VALID_STRINGS: &[&str] = &["Example 例子", "👍", "li.wei@example.com", "example-password-1"];

/// Strings tried as values outside a pattern: each one the pattern refuses is sent.
const OUTSIDE_PATTERNS: &[&str] =
    &["", " ", "\u{3000}", "a\u{0}b", "a\nb", "a\r", "a\u{85}", "\u{2028}", "a b", "@", "a@b", ".a", "a\tb"];

fn allows(schema: &Value, s: &str) -> bool {
    let len = s.chars().count();
    length(schema, "minLength").is_none_or(|m| len >= m)
        && length(schema, "maxLength").is_none_or(|m| len <= m)
        && schema["pattern"].as_str().is_none_or(|p| regex::Regex::new(p).unwrap().is_match(s))
}

/// Makes the id a value needs, from the field's name and, in a list, the item's index.
pub type Ids<'a> = &'a dyn Fn(&str, usize) -> String;

/// A value the schema allows (required object fields only), with ids from `ids`.
pub fn valid(doc: &Value, schema: &Value, field: &str, ids: Ids) -> Value {
    valid_at(doc, schema, field, 0, ids)
}

fn valid_at(doc: &Value, schema: &Value, field: &str, index: usize, ids: Ids) -> Value {
    let schema = concrete(doc, schema);
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    if is_type(&schema, "string") {
        if schema["format"] == "uuid" {
            return json!(ids(field, index));
        }
        if field == "current_password" {
            return json!("owner-password");
        }
        let s = VALID_STRINGS.iter().find(|s| allows(&schema, s)).expect("a valid sample string");
        return json!(s);
    }
    if is_type(&schema, "integer") {
        return json!(schema["minimum"].as_i64().unwrap_or(0));
    }
    if is_type(&schema, "boolean") {
        return json!(false);
    }
    if is_type(&schema, "array") {
        let n = length(&schema, "minItems").unwrap_or(0);
        return Value::Array((0..n).map(|i| valid_at(doc, &schema["items"], field, i, ids)).collect());
    }
    let mut obj = serde_json::Map::new();
    for name in schema["required"].as_array().into_iter().flatten().filter_map(|n| n.as_str()) {
        obj.insert(name.to_owned(), valid(doc, &schema["properties"][name], name, ids));
    }
    Value::Object(obj)
}

/// Values just outside the schema's stated limits, each with what it breaks.
fn outside(doc: &Value, schema: &Value, field: &str, ids: Ids) -> Vec<(String, Value)> {
    let schema = concrete(doc, schema);
    let mut out = Vec::new();
    if schema["enum"].is_array() {
        out.push(("a value not in the enum".to_owned(), json!("no-such-value")));
    }
    if is_type(&schema, "string") && schema["format"] != "uuid" {
        if let Some(max) = length(&schema, "maxLength") {
            out.push((format!("{} characters", max + 1), json!("x".repeat(max + 1))));
            out.push((format!("{} spaces then x", max), json!(format!("{}x", " ".repeat(max)))));
        }
        if let Some(min) = length(&schema, "minLength").filter(|&m| m > 0) {
            out.push((format!("{} characters", min - 1), json!("x".repeat(min - 1))));
        }
        if schema["pattern"].is_string() {
            for s in OUTSIDE_PATTERNS.iter().filter(|s| !allows(&json!({"pattern": schema["pattern"]}), s)) {
                out.push((format!("{s:?} (pattern)"), json!(s)));
            }
        }
    }
    if is_type(&schema, "integer") {
        if let Some(min) = schema["minimum"].as_i64() {
            out.push((format!("{}", min - 1), json!(min - 1)));
        }
        if let Some(max) = schema["maximum"].as_i64() {
            out.push((format!("{}", max + 1), json!(max + 1)));
        }
    }
    if is_type(&schema, "array") {
        let item = valid(doc, &schema["items"], field, ids);
        if let Some(max) = length(&schema, "maxItems") {
            out.push((format!("{} items", max + 1), Value::Array(vec![item.clone(); max + 1])));
        }
        if let Some(min) = length(&schema, "minItems").filter(|&m| m > 0) {
            out.push((format!("{} items", min - 1), Value::Array(vec![item; min - 1])));
        }
    }
    out
}

/// The refusal must be a 4xx validation error about `field`.
fn refused(r: &Resp, field: &str) -> bool {
    let about_field = r.body["field"]
        .as_str()
        .is_some_and(|f| f == field || f.strip_prefix(field).is_some_and(|rest| rest.starts_with(['[', '.'])));
    matches!(r.status, 400 | 422)
        && matches!(r.code(), "invalid_input" | "invalid_parameter" | "invalid_json")
        && about_field
}

#[tokio::test]
async fn every_documented_limit_is_enforced() {
    let srv = TestServer::start().await;
    let owner = srv.owner().await;
    let fx = Fixtures::create(&owner, &srv).await;
    let ids = |field: &str, index: usize| fx.id_for(field, index);
    let doc: Value = reqwest::get(format!("{}/api/openapi.json", srv.url)).await.unwrap().json().await.unwrap();

    let mut failures = Vec::new();
    let mut checked = 0;
    for op in operations(&doc) {
        // Setup is refused once done, whatever the input (its checks: tests/it/setup.rs).
        if op.path == "/api/v1/setup" {
            continue;
        }
        let Some(path) = fx.path(&op.path) else { continue };
        let item = &doc["paths"][&op.path][op.method.as_str().to_lowercase()];
        let params: Vec<&Value> =
            item["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] == "query").collect();
        let required: Vec<(String, String)> = params
            .iter()
            .filter(|p| p["required"] == true)
            .map(|p| {
                let name = p["name"].as_str().unwrap();
                let v = valid(&doc, &p["schema"], name, &ids);
                (name.to_owned(), v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            })
            .collect();
        let binary = item["requestBody"]["content"]["application/octet-stream"].is_object();
        let base = op.body_schema.as_ref().map(|s| valid(&doc, s, "", &ids));

        // Query parameters, the body (if any) valid.
        for p in &params {
            let name = p["name"].as_str().unwrap();
            for (what, bad) in outside(&doc, &p["schema"], name, &ids) {
                let bad = bad.as_str().map_or_else(|| bad.to_string(), str::to_owned);
                let mut query: Vec<(String, String)> = required.iter().filter(|(k, _)| k != name).cloned().collect();
                query.push((name.to_owned(), bad));
                let mut rb = owner.request(op.method.clone(), &path).query(&query);
                if binary {
                    rb = rb.header("content-type", "application/octet-stream").body("limits");
                } else if let Some(body) = &base {
                    rb = rb.json(body);
                }
                let r = owner.send(rb).await;
                checked += 1;
                if !refused(&r, name) {
                    failures.push(format!("{} {} ?{name}= {what}: {} {}", op.method, op.path, r.status, r.body));
                }
            }
        }

        // Body properties, one at a time, the rest valid.
        let Some(schema) = &op.body_schema else { continue };
        let Some(base) = base.as_ref().filter(|b| b.is_object()) else { continue };
        for (field, field_schema) in schema["properties"].as_object().into_iter().flatten() {
            for (what, bad) in outside(&doc, field_schema, field, &ids) {
                let mut body = base.clone();
                body[field.as_str()] = bad;
                let rb = owner.request(op.method.clone(), &path).query(&required).json(&body);
                let r = owner.send(rb).await;
                checked += 1;
                if !refused(&r, field) {
                    failures.push(format!("{} {} .{field} = {what}: {} {}", op.method, op.path, r.status, r.body));
                }
            }
        }
    }
    assert!(checked >= 150, "only {checked} values outside the limits were sent: is the document missing limits?");
    assert!(failures.is_empty(), "{} of {checked} refused wrongly:\n{}", failures.len(), failures.join("\n"));
    // The fixtures were not changed by any of it.
    let r = owner.get(&format!("/api/v1/conversations/{}", fx.conversation)).await;
    assert_eq!(r.body["conversation"]["name"], "limits", "{}", r.body);
}
