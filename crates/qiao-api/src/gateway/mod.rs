//! The realtime gateway at `/api/v1/ws`: committed events, presence and typing pushed to
//! clients, with resume after a disconnect. Mutations stay on HTTP.
//!
//! * `protocol` — the typed, versioned frames (documented in `docs/realtime.md`).
//! * `routing` — who receives which event (pure state, unit-tested).
//! * `presence` — combined presence per person, rate-limited announcements (pure).
//! * `dispatcher` — the one task per node that owns routing and presence.
//! * `dnd` — do-not-disturb settings on their way to the database.
//! * `outbox` — each connection's bounded outgoing queue.
//! * `socket` — one connection: hello, catch-up, the read/write loop.

pub mod dispatcher;
pub mod dnd;
pub mod outbox;
pub mod presence;
pub mod protocol;
pub mod routing;
pub mod socket;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::{HeaderMap, HeaderValue, header};
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
use crate::extract::{SESSION_COOKIE, cookie};

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
        (status = 426, body = ErrorBody, description = "Not a WebSocket upgrade (a plain GET), or a WebSocket version other than 13")))]
pub async fn ws(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(u) => u,
        Err(rejection) => return refused_upgrade(&rejection),
    };
    let cookie_auth = match cookie(&parts, SESSION_COOKIE) {
        Some(token) if same_origin(&parts.headers, state.config.cookie_secure) && token.len() <= 200 => state
            .services
            .authenticate(token)
            .await
            .ok()
            .filter(|a| a.session.kind == SessionKind::Cookie)
            .map(|auth| Box::new(socket::Credentials { token: token.to_owned(), auth })),
        _ => None,
    };
    let up = socket::Upgrade { services: state.services.clone(), gateway: state.gateway.clone(), cookie: cookie_auth };
    let max = state.gateway.config.max_frame;
    upgrade
        // A small read buffer: an idle connection should cost a few kilobytes, not 128 KiB,
        // and clients send little (hello, typing, pings); a large frame just takes several
        // reads. The write buffer only grows to the largest burst written (an idle
        // connection has none); frames coalesced for one flush must leave in one system
        // call, since each call costs far more than the bytes it copies.
        .read_buffer_size(256)
        .write_buffer_size(64 * 1024)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| socket::run(socket, up))
}

/// The answer to a request that is not a usable WebSocket handshake: `426` with the protocol
/// to switch to (RFC 9110 §15.5.22; RFC 6455 §4.4 for the version) when it did not ask for
/// WebSocket 13, `400` when it did but the handshake is malformed.
fn refused_upgrade(rejection: &WebSocketUpgradeRejection) -> Response {
    use WebSocketUpgradeRejection as R;
    let detail = rejection.body_text();
    let (code, headers): (_, &[(header::HeaderName, &str)]) = match rejection {
        R::InvalidConnectionHeader(_) | R::InvalidUpgradeHeader(_) => {
            (ErrorCode::UpgradeRequired, &[(header::UPGRADE, "websocket")])
        }
        R::InvalidWebSocketVersionHeader(_) => {
            (ErrorCode::UpgradeRequired, &[(header::UPGRADE, "websocket"), (header::SEC_WEBSOCKET_VERSION, "13")])
        }
        _ => (ErrorCode::InvalidParameter, &[]),
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
