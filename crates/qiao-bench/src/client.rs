//! A small HTTP client for the public API (bearer tokens), used to set up workloads.

use serde_json::{Value, json};

use crate::server::BoxError;

#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl Api {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), BoxError> {
        let mut rb = self.http.request(method, format!("{}{path}", self.base));
        if !self.token.is_empty() {
            rb = rb.bearer_auth(&self.token);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let res = rb.send().await?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    /// POSTs and expects a 2xx.
    pub async fn post_ok(&self, path: &str, body: Value) -> Result<Value, BoxError> {
        let (status, v) = self.call(reqwest::Method::POST, path, Some(body)).await?;
        if !(200..300).contains(&status) {
            return Err(format!("POST {path}: {status} {v}").into());
        }
        Ok(v)
    }

    pub async fn get_ok(&self, path: &str) -> Result<Value, BoxError> {
        let (status, v) = self.call(reqwest::Method::GET, path, None).await?;
        if status != 200 {
            return Err(format!("GET {path}: {status} {v}").into());
        }
        Ok(v)
    }
}

/// Completes setup with the server's token; returns the owner's client.
pub async fn owner(base: &str, setup_token: &str, http: &reqwest::Client) -> Result<Api, BoxError> {
    let anon = Api { base: base.to_owned(), token: String::new(), http: http.clone() };
    let v = anon
        .post_ok(
            "/api/v1/setup",
            json!({"token": setup_token, "username": "owner", "display_name": "Bench Owner", "password": "bench-password", "mode": "bearer"}),
        )
        .await?;
    Ok(Api { token: v["token"].as_str().ok_or("no token")?.to_owned(), ..anon })
}

/// Creates `n` people and signs each in; returns (user id, client) pairs.
pub async fn people(owner: &Api, prefix: &str, n: usize) -> Result<Vec<(String, Api)>, BoxError> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let username = format!("{prefix}{i}");
        let created = owner
            .post_ok(
                "/api/v1/users",
                json!({"username": username, "display_name": format!("负载 {i}"), "password": "bench-password"}),
            )
            .await?;
        let id = created["user"]["id"].as_str().ok_or("no id")?.to_owned();
        let anon = Api { token: String::new(), ..owner.clone() };
        let signed = anon
            .post_ok("/api/v1/auth/sign-in", json!({"login": username, "password": "bench-password", "mode": "bearer"}))
            .await?;
        out.push((id, Api { token: signed["token"].as_str().ok_or("no token")?.to_owned(), ..owner.clone() }));
    }
    Ok(out)
}

/// Creates a private channel holding `members` (added 100 at a time); returns its id.
pub async fn channel(owner: &Api, name: &str, members: &[String]) -> Result<String, BoxError> {
    let v = owner.post_ok("/api/v1/conversations", json!({"kind": "private", "name": name})).await?;
    let id = v["conversation"]["id"].as_str().ok_or("no id")?.to_owned();
    for chunk in members.chunks(100) {
        owner.post_ok(&format!("/api/v1/conversations/{id}/members"), json!({"user_ids": chunk})).await?;
    }
    Ok(id)
}

/// Every top-level message of a conversation as (seq, id, client_key), oldest first.
pub async fn history(api: &Api, conversation: &str) -> Result<Vec<(i64, String, String)>, BoxError> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page =
            api.get_ok(&format!("/api/v1/conversations/{conversation}/messages?after={after}&limit=200")).await?;
        let items = page["items"].as_array().ok_or("no items")?;
        for m in items {
            out.push((
                m["seq"].as_i64().unwrap_or(0),
                m["id"].as_str().unwrap_or_default().to_owned(),
                m["client_key"].as_str().unwrap_or_default().to_owned(),
            ));
        }
        match out.last() {
            Some(last) if page["more_after"].as_bool() == Some(true) => {
                if last.0 <= after {
                    return Err(format!("{conversation}: history paging did not advance past seq {after}").into());
                }
                after = last.0;
            }
            _ => break,
        }
    }
    Ok(out)
}
