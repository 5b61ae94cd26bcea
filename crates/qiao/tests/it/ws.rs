//! A WebSocket test client for the realtime gateway.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, http};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct Ws {
    pub inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub ready: Value,
    /// The position of the last event received.
    pub pos: i64,
}

/// What came back when a connection ended.
#[derive(Debug)]
pub enum Ended {
    Closed(Option<u16>),
    Gone,
}

pub fn ws_url(base: &str) -> String {
    format!("{}/api/v1/ws", base.replacen("http://", "ws://", 1))
}

impl Ws {
    /// Connects, says hello and waits for `ready`.
    pub async fn connect(base: &str, token: &str, resume_from: Option<i64>) -> Ws {
        let (inner, _) = tokio_tungstenite::connect_async(ws_url(base)).await.expect("connect");
        Self::hello(inner, json!({"op": "hello", "token": token, "resume_from": resume_from})).await
    }

    /// Connects with extra upgrade headers (cookies, origin) and says hello without a token.
    pub async fn connect_with_headers(
        base: &str,
        headers: &[(&str, &str)],
    ) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        let mut req = ws_url(base).into_client_request().unwrap();
        for (k, v) in headers {
            req.headers_mut().insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        tokio_tungstenite::connect_async(req).await.expect("connect").0
    }

    pub async fn hello(mut inner: WebSocketStream<MaybeTlsStream<TcpStream>>, hello: Value) -> Ws {
        inner.send(Message::Text(hello.to_string().into())).await.unwrap();
        let ready = next_json(&mut inner, Duration::from_secs(10)).await.expect("a ready frame");
        assert_eq!(ready["op"], "ready", "{ready}");
        // A resuming client continues from its own position; a fresh one from the head.
        let pos = match hello["resume_from"].as_i64() {
            Some(from) if ready["resumed"] == true => from,
            _ => ready["head"].as_i64().unwrap(),
        };
        Ws { inner, ready, pos }
    }

    pub async fn send(&mut self, v: Value) {
        self.inner.send(Message::Text(v.to_string().into())).await.unwrap();
    }

    /// The next JSON frame within `wait`, or `None`.
    pub async fn next(&mut self, wait: Duration) -> Option<Value> {
        let v = next_json(&mut self.inner, wait).await?;
        if v["op"] == "event" {
            let pos = v["pos"].as_i64().unwrap();
            assert!(pos > self.pos, "event positions must increase: {pos} after {}", self.pos);
            self.pos = pos;
        }
        Some(v)
    }

    /// Events (only) until none arrives for `quiet`.
    pub async fn drain_events(&mut self, quiet: Duration) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(v) = self.next(quiet).await {
            if v["op"] == "event" {
                out.push(v);
            }
        }
        out
    }

    /// Waits for an event whose `data.type` is `kind` (skipping others), up to 10 s.
    pub async fn expect_event(&mut self, kind: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let v = self.next(left).await.unwrap_or_else(|| panic!("no {kind} event"));
            if v["op"] == "event" && v["data"]["type"] == kind {
                return v;
            }
        }
    }

    /// Waits for a frame with this `op`, up to 10 s.
    pub async fn expect_op(&mut self, op: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let v = self.next(left).await.unwrap_or_else(|| panic!("no {op} frame"));
            if v["op"] == op {
                return v;
            }
        }
    }

    /// Reads until the server closes; returns the close code.
    pub async fn ended(&mut self, wait: Duration) -> Ended {
        ended(&mut self.inner, wait).await
    }
}

pub async fn ended(ws: &mut WebSocketStream<MaybeTlsStream<TcpStream>>, wait: Duration) -> Ended {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return Ended::Closed(frame.map(|f: CloseFrame| u16::from(f.code))),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_))) | Ok(None) => return Ended::Gone,
            Err(_) => panic!("the connection did not end in time"),
        }
    }
}

pub async fn next_json(ws: &mut WebSocketStream<MaybeTlsStream<TcpStream>>, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(serde_json::from_str(&t).expect("JSON frame")),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(other))) => panic!("unexpected frame {other:?}"),
            Ok(Some(Err(e))) => panic!("websocket error {e}"),
            Ok(None) => return None,
            Err(_) => return None,
        }
    }
}
