//! The realtime gateway at `/api/v1/ws`: committed events, presence and typing pushed to
//! clients, with resume after a disconnect. Mutations stay on HTTP.
//!
//! * `protocol` — the typed, versioned frames (documented in `docs/realtime.md`).
//! * `routing` — who receives which event (pure state, unit-tested).
//! * `presence` — combined presence per person, rate-limited announcements (pure).
//! * `dispatcher` — the one task per node that owns routing and presence.
//! * `dnd` — do-not-disturb settings on their way to the database.
//! * `outbox` — each connection's bounded outgoing queue.
//! * `link` — a connection's write side, shared with the dispatcher, and its read side.
//! * `wire` — the frames the server writes, as bytes.
//! * `socket` — one connection: hello, catch-up, the read/write loop.

pub mod dispatcher;
pub mod dnd;
pub mod link;
pub mod outbox;
pub mod presence;
pub mod protocol;
pub mod routing;
pub mod socket;
pub mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use qiao_domain::session::SessionKind;
use qiao_domain::{Error, ErrorCode};
use qiao_service::Services;
use qiao_service::realtime::ResumeLimits;
use tokio::sync::{mpsc, oneshot};

use self::dispatcher::{Command, DispatcherConfig, Stats};
use self::dnd::DndLedger;
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{cookie, cookie_names};

/// Maps on the delivery path (every event looks up each recipient's connection): keyed by
/// ids the server made, so a fast seeded hasher is enough.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub(crate) type FastSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

/// Realtime settings.
#[derive(Clone, Copy, Debug)]
pub struct GatewayConfig {
    pub dispatcher: DispatcherConfig,
    /// Most a reconnecting client is sent to catch up (events, bytes); beyond it, it resyncs.
    pub resume: ResumeLimits,
    /// How often the server pings; three silent intervals close the connection.
    pub heartbeat: Duration,
    /// How long a new connection has to say hello.
    pub hello_timeout: Duration,
    /// Largest client frame accepted.
    pub max_frame: usize,
    /// Shortest time between two writes to one connection: a connection that receives often
    /// gets several frames per write (one system call, fewer packets) at the cost of at most
    /// this much latency; one that receives rarely is written to at once.
    pub flush_interval: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            dispatcher: DispatcherConfig::default(),
            resume: ResumeLimits { events: 10_000, bytes: 16 << 20 },
            heartbeat: Duration::from_secs(25),
            hello_timeout: Duration::from_secs(10),
            // Room for a `presence_subscribe` of the most people one may follow (500 ids).
            max_frame: 32 * 1024,
            flush_interval: Duration::from_millis(4),
        }
    }
}

/// Handle to this node's gateway; cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    commands: mpsc::Sender<Command>,
    next: Arc<AtomicU64>,
    config: Arc<GatewayConfig>,
    dnd: Arc<DndLedger>,
    services: Services,
}

impl Gateway {
    /// Starts the dispatcher, subscribed to committed events from the services' hub, once it
    /// has read who has do-not-disturb on; and the task that stores such settings.
    pub fn spawn(services: &Services, config: GatewayConfig) -> Gateway {
        let (commands, rx) = mpsc::channel(16 * 1024);
        let feeds = dispatcher::Feeds::subscribe(&services.hub);
        let dnd = Arc::new(DndLedger::default());
        let (s, ledger) = (services.clone(), dnd.clone());
        tokio::spawn(async move {
            // Commands wait in the channel meanwhile, batches in the hub's subscription.
            let stored = s.do_not_disturb_on().await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "could not read do-not-disturb settings; starting without them");
                Vec::new()
            });
            dispatcher::run(feeds, rx, config.dispatcher, stored, ledger).await;
        });
        let (s, ledger) = (services.clone(), dnd.clone());
        tokio::spawn(async move { ledger.run(s).await });
        Gateway {
            commands,
            next: Arc::new(AtomicU64::new(1)),
            config: Arc::new(config),
            dnd,
            services: services.clone(),
        }
    }

    fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Closes every connection with "going away" (clients reconnect and resume), and stores
    /// the do-not-disturb settings not written yet.
    pub async fn shutdown(&self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Shutdown { done }).await.is_ok() {
            let _ = wait.await;
        }
        self.dnd.close(&self.services).await;
    }

    pub async fn stats(&self) -> Stats {
        let (reply, wait) = oneshot::channel();
        if self.commands.send(Command::Stats { reply }).await.is_err() {
            return Stats::default();
        }
        wait.await.unwrap_or_default()
    }
}

/// Whether the request's `Origin` (if any) is this server: a browser on another site must
/// not be able to use the visitor's cookie over a WebSocket. `https_only` (the server's
/// cookies are `Secure`: it is served over https) also refuses a page served over plain
/// http on the same host, which anyone on the network path could have written.
fn same_origin(headers: &HeaderMap, https_only: bool) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let (scheme, origin_host) = origin.split_once("://").unwrap_or(("", origin));
    if https_only && !scheme.eq_ignore_ascii_case("https") {
        return false;
    }
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// The realtime stream (WebSocket).
///
/// Upgrade to a WebSocket, then send `{"op":"hello","token":"…","resume_from":…}` as the
/// first frame (browsers may omit `token`: their session cookie is used). See
/// `docs/realtime.md` for every frame.
#[utoipa::path(get, path = "/api/v1/ws", tag = "realtime", security(()),
    responses((status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, body = ErrorBody, description = "A malformed WebSocket handshake (no key, say)"),
        (status = 426, body = ErrorBody, description = "Not a WebSocket upgrade (a plain GET), or a WebSocket version other than 13"),
        (status = 503, body = ErrorBody, description = "The session cookie could not be checked just now (the database is unavailable); try again")))]
pub async fn ws(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (mut parts, _) = request.into_parts();
    if parts.method != axum::http::Method::GET {
        return refused_upgrade(Refusal::Malformed("a WebSocket handshake is a GET"));
    }
    let key = match handshake_key(&parts.headers) {
        Ok(key) => key,
        Err(refusal) => return refused_upgrade(refusal),
    };
    let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
        return refused_upgrade(Refusal::Malformed("the connection cannot be upgraded"));
    };
    let cookie_auth = match cookie(&parts, cookie_names(state.config.cookie_secure).0) {
        Some(token) if same_origin(&parts.headers, state.config.cookie_secure) => {
            match socket::credentials(&state.services, token, SessionKind::Cookie).await {
                Ok(found) => found.map(Box::new),
                Err(e) => return ApiError(e).into_response(),
            }
        }
        _ => None,
    };
    let up = socket::Upgrade { services: state.services.clone(), gateway: state.gateway.clone(), cookie: cookie_auth };
    let max = state.gateway.config.max_frame;
    // A small read buffer: an idle connection should cost a few kilobytes, not 128 KiB, and
    // clients send little (hello, typing, pings); a large frame just takes several reads.
    // (Nothing is written through tungstenite: see `link`.)
    let config = tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(256)
        .write_buffer_size(0)
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    let (limit, gap) = (state.gateway.config.dispatcher.queue, state.gateway.config.flush_interval);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        let (read, write) = tokio::io::split(hyper_util::rt::TokioIo::new(upgraded));
        let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            link::ReadSide(read),
            tungstenite::protocol::Role::Server,
            Some(config),
        )
        .await;
        socket::run(socket::Socket { ws, link: link::Link::new(write, limit, gap) }, up).await;
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = response.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::SEC_WEBSOCKET_ACCEPT, accept_key(key.as_bytes()));
    response
}

/// Why a request is not a usable WebSocket handshake.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// Not an upgrade to WebSocket at all (a plain GET).
    NotWebSocket(&'static str),
    /// A WebSocket version other than 13.
    Version,
    /// A WebSocket handshake with something missing.
    Malformed(&'static str),
}

/// Whether `name`'s comma-separated values hold `token` (case-insensitive).
fn header_has(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The client's `Sec-WebSocket-Key` if the headers make a WebSocket 13 handshake (RFC 6455
/// §4.2.1).
fn handshake_key(headers: &HeaderMap) -> Result<HeaderValue, Refusal> {
    if !header_has(headers, header::CONNECTION, "upgrade") {
        return Err(Refusal::NotWebSocket("the Connection header does not include 'upgrade'"));
    }
    if !header_has(headers, header::UPGRADE, "websocket") {
        return Err(Refusal::NotWebSocket("the Upgrade header is not 'websocket'"));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .cloned()
        .ok_or(Refusal::Malformed("the Sec-WebSocket-Key header is missing"))?;
    // A nonce: 16 bytes, base64-encoded (RFC 6455 §4.1).
    {
        use base64::Engine;
        let nonce = base64::engine::general_purpose::STANDARD.decode(key.as_bytes());
        if nonce.map_or(true, |n| n.len() != 16) {
            return Err(Refusal::Malformed("the Sec-WebSocket-Key header is not 16 bytes in base64"));
        }
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).is_none_or(|v| v.as_bytes() != b"13") {
        return Err(Refusal::Version);
    }
    Ok(key)
}

/// `Sec-WebSocket-Accept` for a key: base64 of SHA-1 of the key and the protocol's GUID.
fn accept_key(key: &[u8]) -> HeaderValue {
    use base64::Engine;
    use sha1::Digest;
    let mut sha1 = sha1::Sha1::default();
    sha1.update(key);
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let value = base64::engine::general_purpose::STANDARD.encode(sha1.finalize());
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(""))
}

/// The answer to a request that is not a usable WebSocket handshake: `426` with the protocol
/// to switch to (RFC 9110 §15.5.22; RFC 6455 §4.4 for the version) when it did not ask for
/// WebSocket 13, `400` when it did but the handshake is malformed.
fn refused_upgrade(refusal: Refusal) -> Response {
    let (code, detail, headers): (_, _, &[(header::HeaderName, &str)]) = match refusal {
        Refusal::NotWebSocket(why) => (ErrorCode::UpgradeRequired, why, &[(header::UPGRADE, "websocket")]),
        Refusal::Version => (
            ErrorCode::UpgradeRequired,
            "only WebSocket version 13 is spoken",
            &[(header::UPGRADE, "websocket"), (header::SEC_WEBSOCKET_VERSION, "13")],
        ),
        Refusal::Malformed(why) => (ErrorCode::InvalidParameter, why, &[]),
    };
    let mut response =
        ApiError(Error::new(code).with_message(format!("Connect with a WebSocket client: {detail}"))).into_response();
    for (name, value) in headers {
        response.headers_mut().insert(name.clone(), HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn the_handshake_is_checked_and_answered_as_rfc_6455_says() {
        // RFC 6455 §1.3's example.
        assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let mut h = HeaderMap::new();
        assert!(matches!(handshake_key(&h), Err(Refusal::NotWebSocket(_))));
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(matches!(handshake_key(&h), Err(Refusal::NotWebSocket(_))));
        h.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        assert!(matches!(handshake_key(&h), Err(Refusal::Malformed(_))));
        h.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="));
        assert_eq!(handshake_key(&h), Err(Refusal::Version));
        h.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        assert_eq!(handshake_key(&h), Err(Refusal::Version));
        h.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        assert_eq!(handshake_key(&h).unwrap(), "dGhlIHNhbXBsZSBub25jZQ==");
    }

    #[test]
    fn cookies_only_from_our_own_origin() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("chat.example.com"));
        assert!(same_origin(&h, true), "no Origin: not a browser");
        h.insert(header::ORIGIN, HeaderValue::from_static("https://chat.example.com"));
        assert!(same_origin(&h, true));
        h.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!same_origin(&h, false));
        // A page over plain http on the same host, when the server is served over https.
        h.insert(header::ORIGIN, HeaderValue::from_static("http://chat.example.com"));
        assert!(!same_origin(&h, true));
        assert!(same_origin(&h, false), "a server without https (a test, a LAN install)");
    }
}
