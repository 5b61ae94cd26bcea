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

    /// Waits up to `secs` for a frame `want` accepts (skipping others); panics naming `what`.
    pub async fn expect(&mut self, secs: u64, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let v = self.next(left).await.unwrap_or_else(|| panic!("never saw {what}"));
            if want(&v) {
                return v;
            }
        }
    }

    /// Waits for an event whose `data.type` is `kind` (skipping others), up to 10 s.
    pub async fn expect_event(&mut self, kind: &str) -> Value {
        self.expect(10, &format!("a {kind} event"), |v| v["op"] == "event" && v["data"]["type"] == kind).await
    }

    /// Waits for a frame with this `op`, up to 10 s.
    pub async fn expect_op(&mut self, op: &str) -> Value {
        self.expect(10, &format!("a {op} frame"), |v| v["op"] == op).await
    }

    /// Waits for `user`'s presence to be announced as `status`. A snapshot may come first
    /// with what was announced before (a change is announced at most every 2 s per person),
    /// so earlier statuses are skipped.
    pub async fn expect_presence(&mut self, user: &str, status: &str) {
        let what = format!("{user} announced {status}");
        self.expect(10, &what, |v| v["op"] == "presence" && v["user_id"] == user && v["status"] == status).await;
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

/// A WebSocket client that writes raw frames, to send what a library refuses to: unmasked
/// frames, reserved bits, bad fragmentation, invalid UTF-8.
pub struct RawWs {
    stream: TcpStream,
    read: Vec<u8>,
}

impl RawWs {
    /// Opens the connection (the upgrade handshake only; no hello).
    pub async fn connect(base: &str) -> RawWs {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let host = base.trim_start_matches("http://");
        let mut stream = TcpStream::connect(host).await.expect("connect");
        let request = format!(
            "GET /api/v1/ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut read = Vec::new();
        let end = loop {
            if let Some(i) = read.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed during the upgrade");
            read.extend_from_slice(&chunk[..n]);
        };
        assert!(read.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&read[..end]));
        read.drain(..end);
        RawWs { stream, read }
    }

    /// Writes one frame; `first` is its first byte (FIN, reserved bits, opcode).
    pub async fn frame(&mut self, first: u8, payload: &[u8], masked: bool) {
        use tokio::io::AsyncWriteExt;
        let mask_bit = if masked { 0x80 } else { 0 };
        let mut out = vec![first];
        match payload.len() {
            n @ 0..=125 => out.push(mask_bit | n as u8),
            n @ 126..=65535 => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if masked {
            let key = [0x37, 0xfa, 0x21, 0x3d];
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        } else {
            out.extend_from_slice(payload);
        }
        self.stream.write_all(&out).await.unwrap();
    }

    /// Reads the server's frames until its close frame; its code (`None`: the connection
    /// ended without one). Panics if neither happens within `wait`.
    pub async fn close_code(&mut self, wait: Duration) -> Option<u16> {
        use tokio::io::AsyncReadExt;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // One whole frame in the buffer? (Server frames are unmasked.)
            if self.read.len() >= 2 {
                let (opcode, len7) = (self.read[0] & 0x0f, usize::from(self.read[1] & 0x7f));
                let (start, len) = match len7 {
                    126 if self.read.len() >= 4 => (4, usize::from(u16::from_be_bytes([self.read[2], self.read[3]]))),
                    127 if self.read.len() >= 10 => {
                        (10, u64::from_be_bytes(self.read[2..10].try_into().unwrap()) as usize)
                    }
                    126 | 127 => (usize::MAX, 0),
                    n => (2, n),
                };
                if start != usize::MAX && self.read.len() >= start + len {
                    let payload: Vec<u8> = self.read.drain(..start + len).skip(start).collect();
                    if opcode == 0x8 {
                        return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    }
                    continue;
                }
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return None,
                Ok(Ok(n)) => self.read.extend_from_slice(&chunk[..n]),
                Err(_) => panic!("the connection did not end in time"),
            }
        }
    }
}
