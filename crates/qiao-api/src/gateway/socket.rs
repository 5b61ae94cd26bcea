//! One WebSocket connection: the hello handshake, catching up, then a loop that reads the
//! client's frames, writes queued frames (several per flush), pings, and times out.

use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;
use qiao_domain::perm::Actor;
use qiao_domain::session::SessionKind;
use qiao_service::ratelimit::{Bucket, RateConfig};
use qiao_service::realtime::Catchup;
use qiao_service::{Authenticated, Services};
use std::sync::Arc;
use tokio_tungstenite::WebSocketStream;
use tungstenite::Message;

use super::Gateway;
use super::dispatcher::{Command, Out};
use super::link::{Link, ReadSide};
use super::outbox::Outbox;
use super::protocol::{ClientMessage, PROTOCOL_VERSION, ServerMessage, close};
use super::wire;

/// A connection: tungstenite reads the client's frames; every write goes through the link.
pub struct Socket {
    pub ws: WebSocketStream<ReadSide>,
    pub link: Arc<Link>,
}

impl Socket {
    async fn recv(&mut self) -> Option<Result<Message, tungstenite::Error>> {
        self.ws.next().await
    }
}

/// What the upgrade request established.
pub struct Upgrade {
    pub services: Services,
    pub gateway: Gateway,
    /// A valid session from the cookie, when the request's origin was our own (boxed: the
    /// connection's task carries this struct for its whole life).
    pub cookie: Option<Box<Credentials>>,
}

/// Who a connection authenticated as, and with which token: it is checked again once the
/// connection is registered.
pub struct Credentials {
    pub token: String,
    pub auth: Authenticated,
}

/// The credentials `token` gives for a live session of `kind` (`None` for none, or a token
/// no session could have: empty or over 200 bytes). An error when it could not be checked
/// (the database, say): no reason to tell the client to sign in again.
pub async fn credentials(
    services: &Services,
    token: &str,
    kind: SessionKind,
) -> Result<Option<Credentials>, qiao_domain::Error> {
    if token.is_empty() || token.len() > 200 {
        return Ok(None);
    }
    match services.authenticate(token).await {
        Ok(auth) if auth.session.kind == kind => Ok(Some(Credentials { token: token.to_owned(), auth })),
        Ok(_) => Ok(None),
        Err(e) if e.code == qiao_domain::ErrorCode::Unauthenticated => Ok(None),
        Err(e) => Err(e),
    }
}

/// Consecutive invalid frames tolerated before the connection is closed.
const BAD_FRAMES_MAX: u32 = 10;
/// Most frames written per flush.
const COALESCE_MAX: usize = 512;

fn text(msg: &ServerMessage) -> Bytes {
    wire::text(msg.to_json().as_bytes())
}

/// How long one write may wait for a client that does not read before it is dropped.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Sends one frame of the task's own; false if the client is gone or has not read for
/// [`WRITE_TIMEOUT`].
async fn send_timed(link: &Link, frame: Bytes) -> bool {
    matches!(tokio::time::timeout(WRITE_TIMEOUT, link.write_own(&frame)).await, Ok(Ok(())))
}

/// Sends a close frame (after which nothing may be written: the queue is closed first, so
/// the dispatcher stops writing and lets the connection go).
async fn close_with(link: &Link, code: u16, reason: &'static str) {
    link.queue.close();
    send_timed(link, wire::close(code, reason)).await;
}

/// Sends an `error` frame (the connection stays open unless the caller closes it).
async fn send_error(link: &Link, code: &str, message: impl Into<String>) {
    send_timed(link, text(&ServerMessage::error(code, message))).await;
}

/// A parse error for an `error` frame: serde quotes the offending input, which may be long.
fn brief(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Completes a close handshake the client started: its code echoed (RFC 6455 §5.5.1; none
/// if it gave none, and 1002 for a code no endpoint may send, which tungstenite has put in
/// its place); briefly, since the client is leaving.
async fn answer_close(link: &Link, theirs: Option<&tungstenite::protocol::CloseFrame>) {
    let frame = theirs.map_or_else(wire::close_bare, |f| wire::close(u16::from(f.code), ""));
    link.queue.close();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), link.write_own(&frame)).await;
}

/// The close code and reason owed to a client whose frame could not be read (RFC 6455
/// §7.4.1: a protocol violation, invalid UTF-8, a frame over the limit); `None` when the
/// connection itself is gone and nothing can be said.
fn close_for(e: &tungstenite::Error) -> Option<(u16, &'static str)> {
    use tungstenite::error::ProtocolError as P;
    let code = close::WEBSOCKET_PROTOCOL_ERROR;
    match e {
        tungstenite::Error::Capacity(_) => Some((close::TOO_BIG, "frame too large")),
        tungstenite::Error::Utf8(_) => Some((close::INVALID_TEXT, "text is not valid UTF-8")),
        tungstenite::Error::Protocol(p) => match p {
            P::ResetWithoutClosingHandshake | P::ReceivedAfterClosing | P::SendAfterClosing => None,
            P::UnmaskedFrameFromClient => Some((code, "client frames must be masked")),
            P::NonZeroReservedBits => Some((code, "reserved bits are set (no extension was agreed)")),
            P::FragmentedControlFrame | P::ControlFrameTooBig => Some((code, "invalid control frame")),
            P::UnknownControlFrameType(_) | P::UnknownDataFrameType(_) => Some((code, "unknown opcode")),
            P::UnexpectedContinueFrame | P::ExpectedFragment(_) => Some((code, "invalid fragmentation")),
            P::InvalidCloseSequence => Some((code, "invalid close frame")),
            _ => Some((code, "protocol error")),
        },
        _ => None,
    }
}

/// Frames a client may send: a sustained rate and a burst (hello, pings, presence, typing and
/// presence subscriptions come far slower). Beyond it frames are refused as invalid, and a
/// stream of them closes the connection.
const CLIENT_FRAMES: RateConfig = RateConfig { per_second: 10.0, burst: 40.0 };

/// Presence subscriptions a connection may send: each can make the dispatcher announce up to
/// 500 statuses, so they have a budget of their own (a client sends one when the people it
/// shows change).
const SUBSCRIPTIONS: RateConfig = RateConfig { per_second: 1.0, burst: 5.0 };

/// Ping and pong frames a client may send before its `hello`.
const PINGS_BEFORE_HELLO: u32 = 4;

/// Waits for `hello` and authenticates; `None` when the connection was refused (and closed).
async fn handshake(
    ws: &mut Socket,
    up: &Upgrade,
    cookie: Option<Box<Credentials>>,
) -> Option<(Credentials, Option<i64>)> {
    let deadline = tokio::time::Instant::now() + up.gateway.config.hello_timeout;
    let mut control_frames = 0;
    let received = loop {
        let received = tokio::select! {
            r = tokio::time::timeout_at(deadline, ws.recv()) => r,
            // The dispatcher stopped: the server is shutting down, and this connection is not
            // registered for its "going away".
            () = up.gateway.commands.closed() => {
                close_with(&ws.link, close::GOING_AWAY, "server restarting").await;
                return None;
            }
        };
        // A WebSocket library's keep-alive may ping before the client says hello: a few such
        // frames are answered and passed over, a stream of them is refused below.
        control_frames += 1;
        if control_frames > PINGS_BEFORE_HELLO || !matches!(received, Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))))
        {
            break received;
        }
        if let Ok(Some(Ok(Message::Ping(payload)))) = &received {
            send_timed(&ws.link, wire::pong(payload)).await;
        }
    };
    let first = match received {
        Ok(Some(Ok(Message::Text(t)))) => t,
        Ok(Some(Ok(Message::Close(frame)))) => {
            answer_close(&ws.link, frame.as_ref()).await;
            return None;
        }
        Ok(Some(Ok(_))) => {
            send_error(&ws.link, "invalid_frame", "The first frame must be a JSON hello.").await;
            close_with(&ws.link, close::PROTOCOL_ERROR, "expected hello").await;
            return None;
        }
        Err(_) => {
            // A stalled network, not bad credentials: the client reconnects, it does not sign out.
            close_with(&ws.link, close::IDLE_TIMEOUT, "no hello in time").await;
            return None;
        }
        Ok(Some(Err(e))) => {
            if let Some((code, reason)) = close_for(&e) {
                close_with(&ws.link, code, reason).await;
            }
            return None;
        }
        Ok(None) => return None,
    };
    let (token, resume_from) = match serde_json::from_str::<ClientMessage>(&first) {
        Ok(ClientMessage::Hello { token, resume_from }) => (token, resume_from),
        refused => {
            let why = match refused {
                Err(e) => format!("The first frame must be {{\"op\":\"hello\"}}; this one is not valid: {}", brief(&e)),
                Ok(_) => "The first frame must be {\"op\":\"hello\"}.".to_owned(),
            };
            send_error(&ws.link, "invalid_frame", why).await;
            close_with(&ws.link, close::PROTOCOL_ERROR, "expected hello").await;
            return None;
        }
    };
    let auth = match token {
        // Browsers cannot read their HttpOnly cookie token, so a token here is a bearer one.
        Some(t) => match credentials(&up.services, &t, SessionKind::Bearer).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "could not check a realtime session");
                send_error(
                    &ws.link,
                    "unavailable",
                    "The session could not be checked just now; reconnect in a moment.",
                )
                .await;
                close_with(&ws.link, 1011, "try again").await;
                return None;
            }
        },
        None => cookie.map(|c| *c),
    };
    match auth {
        // As over HTTP: an account with a temporary password sets its own first (whoever was
        // given the temporary one must not read its conversations meanwhile).
        Some(a) if a.auth.user.must_change_password => {
            refuse_until_password_changed(&ws.link).await;
            None
        }
        Some(a) => Some((a, resume_from)),
        None => {
            send_error(&ws.link, "unauthenticated", "Sign in, then send the session token in hello.").await;
            close_with(&ws.link, close::UNAUTHENTICATED, "unauthenticated").await;
            None
        }
    }
}

async fn refuse_until_password_changed(link: &Link) {
    send_error(link, "password_change_required", "Change your password (over HTTP), then connect again.").await;
    close_with(link, close::UNAUTHENTICATED, "password change required").await;
}

pub async fn run(mut ws: Socket, mut up: Upgrade) {
    // The task lives as long as the connection: its future holds only what the steady state
    // needs, and the one-off steps (handshake, catch-up, handling a client frame) run boxed,
    // so an idle connection costs a few kilobytes.
    let cookie = up.cookie.take();
    if let Some((actor, conn, leaving)) = Box::pin(open(&mut ws, &up, cookie)).await {
        serve(&mut ws, &up.services, &up.gateway, &actor, conn).await;
        drop(leaving);
    }
    Box::pin(linger(&mut ws)).await;
}

/// How long a connection that is over is kept to let the client close its side.
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);
/// Most bytes read and dropped meanwhile.
const LINGER_BYTES: usize = 1 << 20;

/// The end of a connection. Dropping a socket whose client's frames are still unread makes
/// the kernel answer with a reset, and the client's library then discards what it had
/// received and not yet read: the `error` frame and the close code that said why (a pipelined
/// hello with a bad token, a burst past the frame budget). So the write side is ended first
/// (after everything written), and what the client still sends is read and dropped until it
/// closes its side too, for at most [`LINGER`] (RFC 6455 §7.1.1: the server closes the TCP
/// connection, once the close handshake is done).
async fn linger(ws: &mut Socket) {
    use tokio::io::AsyncReadExt;
    ws.link.shutdown(LINGER).await;
    let read = ws.ws.get_mut();
    let mut buf = vec![0u8; 512];
    let mut dropped = 0;
    let _ = tokio::time::timeout(LINGER, async {
        while dropped < LINGER_BYTES {
            match read.0.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => dropped += n,
            }
        }
    })
    .await;
}

/// A registered connection's way out, however its task ends (returning, or a panic): the
/// dispatcher stops writing to it and forgets it, so neither its socket (whose write side
/// the dispatcher holds) nor its presence lingers.
struct Leaving {
    link: Arc<Link>,
    commands: tokio::sync::mpsc::Sender<Command>,
    conn: u64,
}

impl Drop for Leaving {
    fn drop(&mut self) {
        self.link.queue.close();
        let unregister = Command::Unregister { conn: self.conn };
        if let Err(tokio::sync::mpsc::error::TrySendError::Full(unregister)) = self.commands.try_send(unregister) {
            let commands = self.commands.clone();
            tokio::spawn(async move {
                let _ = commands.send(unregister).await;
            });
        }
    }
}

/// Authenticates, registers with the dispatcher and sends `ready` and the catch-up; `None`
/// if the connection ended (it is closed and unregistered by then).
async fn open(ws: &mut Socket, up: &Upgrade, cookie: Option<Box<Credentials>>) -> Option<(Actor, u64, Leaving)> {
    let (credentials, resume_from) = handshake(ws, up, cookie).await?;
    let auth = &credentials.auth;
    let gw = &up.gateway;
    if let Err(e) = up.services.realtime_admit(auth) {
        let wait = ServerMessage::Error {
            code: "rate_limited".into(),
            message: e.message.into_owned(),
            retry_after_secs: Some(e.retry_after_secs.unwrap_or(1)),
        };
        send_timed(&ws.link, text(&wait)).await;
        close_with(&ws.link, close::TOO_MANY_ATTEMPTS, "connecting too often; wait").await;
        return None;
    }
    let conn = gw.next_id();
    let queue = ws.link.clone();
    let (ack, registered) = tokio::sync::oneshot::channel();
    let register = Command::Register {
        conn,
        user: auth.user.id,
        session: auth.session.id,
        guest: auth.user.role.is_guest(),
        queue,
        ack,
    };
    match (gw.commands.send(register).await, registered.await) {
        (Ok(()), Ok(true)) => {}
        (Ok(()), Ok(false)) => {
            close_with(&ws.link, close::TOO_MANY_CONNECTIONS, "too many connections; close some").await;
            return None;
        }
        _ => {
            close_with(&ws.link, close::GOING_AWAY, "server restarting").await;
            return None;
        }
    }
    // Registered: from here on, however this ends, the dispatcher is told.
    let leaving = Leaving { link: ws.link.clone(), commands: gw.commands.clone(), conn };
    // The check comes after the start's snapshot: a session ended before the check is refused
    // here, after it the event reaches the connection (and closes it) once the catch-up is
    // sent; one in the catch-up itself (committed while a resume waited for its turn, and not
    // yet heard of by the session cache) refuses the start below.
    let start = async {
        let start = up.services.realtime_start(auth, resume_from, gw.config.resume).await?;
        up.services.realtime_recheck(&credentials.token, auth).await?;
        Ok::<_, qiao_domain::Error>(start)
    };
    let start = match start.await {
        Ok(s) => s,
        Err(e) => {
            // The session or account ended, or the role changed, before this connection's
            // start was read (so no event could close it, and its catch-up may show more).
            match e.code {
                qiao_domain::ErrorCode::Unauthenticated => {
                    close_with(&ws.link, close::SESSION_ENDED, "session ended").await
                }
                qiao_domain::ErrorCode::PasswordChangeRequired => refuse_until_password_changed(&ws.link).await,
                qiao_domain::ErrorCode::Conflict => {
                    close_with(&ws.link, close::ACCESS_CHANGED, "role changed; reconnect").await;
                }
                _ => {
                    tracing::warn!(error = %e, "could not start a realtime session");
                    close_with(&ws.link, 1011, "try again").await;
                }
            }
            return None;
        }
    };
    if let Catchup::Events(frames) = &start.catchup
        && let Some((code, reason)) =
            super::routing::catchup_ends(frames, auth.user.id, auth.session.id, auth.user.role.is_guest())
    {
        close_with(&ws.link, code, reason).await;
        return None;
    }
    let ready = ServerMessage::Ready {
        protocol: PROTOCOL_VERSION,
        user_id: auth.user.id,
        session_id: auth.session.id,
        head: start.head,
        resumed: matches!(start.catchup, Catchup::Events(_)),
        heartbeat_ms: u64::try_from(gw.config.heartbeat.as_millis()).unwrap_or(u64::MAX),
    };
    // A client that does not read its catch-up is dropped like any other: each chunk must go
    // within WRITE_TIMEOUT, and the whole within CATCHUP_TIMEOUT (a slow link gets through a
    // large catch-up, and resumes from what it got if it does not).
    let ok = tokio::time::timeout(CATCHUP_TIMEOUT, send_catchup(&ws.link, &ready, start.head, start.catchup)).await;
    let ok = matches!(ok, Ok(true));
    if !ok {
        return None;
    }
    let ready = Command::Ready { conn, memberships: start.memberships, sent_up_to: start.head };
    if gw.commands.send(ready).await.is_err() {
        // The dispatcher stopped while this connection caught up: the server is shutting down.
        close_with(&ws.link, close::GOING_AWAY, "server restarting").await;
        return None;
    }
    // Only who the person is stays with the connection (an ended session or a disabled
    // account closes it).
    Some((credentials.auth.actor, conn, leaving))
}

/// Catch-up frames gathered before a write: a few writes for a long catch-up, not one per frame.
const CATCHUP_CHUNK: usize = 64 * 1024;
/// Longest a whole catch-up may take to write (the largest, 16 MiB, needs ~55 KB/s).
const CATCHUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Writes `ready` and the catch-up; false if the connection failed.
async fn send_catchup(link: &Link, ready: &ServerMessage, head: i64, catchup: Catchup) -> bool {
    let mut buf = text(ready).to_vec();
    match catchup {
        Catchup::Events(frames) => {
            metrics::counter!("qiao_ws_resumed_events_total").increment(frames.len() as u64);
            for frame in frames {
                if std::str::from_utf8(&frame).is_err() {
                    tracing::error!("a stored event frame is not UTF-8");
                    continue;
                }
                buf.extend_from_slice(&wire::text(&frame));
                if buf.len() >= CATCHUP_CHUNK && !send_timed(link, std::mem::take(&mut buf).into()).await {
                    return false;
                }
            }
        }
        Catchup::Resync(reason) => {
            let msg = ServerMessage::Resync { head, reason: reason.into() };
            buf.extend_from_slice(&text(&msg));
        }
        Catchup::Fresh => {}
    }
    buf.is_empty() || send_timed(link, buf.into()).await
}

/// Writes queued frames (the first given), several in one write; the error says whether the
/// connection must be closed with a code (a queued close) or is gone.
async fn write_frames(link: &Link, first: Bytes, rx: &Outbox<Out>) -> Result<(), Option<(u16, &'static str)>> {
    // Coalesce what is already queued into the same write.
    let mut frames = vec![first];
    let mut closing = None;
    while frames.len() < COALESCE_MAX {
        match rx.try_pop() {
            Some(Out::Frame(f)) => frames.push(f),
            Some(Out::Close(code, reason)) => {
                closing = Some((code, reason));
                break;
            }
            None => break,
        }
    }
    let written =
        if let [one] = frames.as_slice() { link.write_all(one).await } else { link.write_all(&frames.concat()).await };
    match (written, closing) {
        (Err(_), _) => Err(None),
        (Ok(()), Some(close)) => Err(Some(close)),
        (Ok(()), None) => Ok(()),
    }
}

/// `fut`, given at most `limit` if it does not finish at once: almost every write does, and
/// then no timer is set (a timer per write was ~1.5 % of the server's time in a large room).
async fn bounded<F: std::future::Future>(limit: std::time::Duration, fut: F) -> Result<F::Output, ()> {
    let mut fut = std::pin::pin!(fut);
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await;
    match first {
        std::task::Poll::Ready(out) => Ok(out),
        std::task::Poll::Pending => tokio::time::timeout(limit, fut).await.map_err(drop),
    }
}

/// The connection's main loop; returns when it is over (the socket is closed by then).
async fn serve(ws: &mut Socket, services: &Services, gw: &Gateway, actor: &Actor, conn: u64) {
    let heartbeat = gw.config.heartbeat;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    let mut last_heard = Instant::now();
    let mut bad_frames = 0u32;
    let mut budget = Bucket::full(CLIENT_FRAMES, Instant::now());
    let mut subscriptions = Bucket::full(SUBSCRIPTIONS, Instant::now());
    let link = ws.link.clone();
    let rx = &link.queue;
    loop {
        tokio::select! {
            out = rx.pop() => match out {
                Some(Out::Frame(frame)) => {
                    // Busy connection: let more frames queue up so they leave in one write.
                    if let Some(since) = rx.since_write()
                        && since < gw.config.flush_interval
                    {
                        tokio::time::sleep(gw.config.flush_interval - since).await;
                    }
                    // A client that stops reading altogether cannot be told anything: drop it.
                    let written = bounded(WRITE_TIMEOUT, write_frames(&link, frame, rx)).await;
                    match written {
                        Ok(Ok(())) => rx.end_write(),
                        Ok(Err(Some((code, reason)))) => {
                            // (Still busy: nothing is written directly before the close.)
                            close_with(&link, code, reason).await;
                            return;
                        }
                        // Failed or given up half-way: nothing may follow.
                        Ok(Err(None)) | Err(_) => {
                            rx.break_off();
                            return;
                        }
                    }
                }
                Some(Out::Close(code, reason)) => {
                    close_with(&link, code, reason).await;
                    return;
                }
                None => {
                    close_with(&link, close::SLOW_CONSUMER, "too slow; reconnect with resume_from").await;
                    return;
                }
            },
            msg = ws.recv() => {
                last_heard = Instant::now();
                match msg {
                    Some(Ok(Message::Text(t))) => {
                        let handled = if budget.take(CLIENT_FRAMES, last_heard).is_ok() {
                            Box::pin(handle(&link, services, gw, actor, conn, t.as_str(), &mut subscriptions)).await
                        } else {
                            send_error(&link, "rate_limited", "Too many frames; slow down.").await;
                            Err(())
                        };
                        match handled {
                            Ok(()) => bad_frames = 0,
                            Err(()) => {
                                bad_frames += 1;
                                if bad_frames > BAD_FRAMES_MAX {
                                    close_with(&link, close::PROTOCOL_ERROR, "too many invalid frames").await;
                                    return;
                                }
                            }
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        send_error(&link, "invalid_frame", "Binary frames are not supported.").await;
                        close_with(&link, close::PROTOCOL_ERROR, "binary frames are not supported").await;
                        return;
                    }
                    Some(Ok(m @ (Message::Ping(_) | Message::Pong(_)))) => {
                        if budget.take(CLIENT_FRAMES, last_heard).is_err() {
                            bad_frames += 1;
                            if bad_frames > BAD_FRAMES_MAX {
                                close_with(&link, close::PROTOCOL_ERROR, "too many frames").await;
                                return;
                            }
                        } else if let Message::Ping(payload) = m
                            && !send_timed(&link, wire::pong(&payload)).await
                        {
                            return;
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        answer_close(&link, frame.as_ref()).await;
                        return;
                    }
                    // (tungstenite hands whole messages only.)
                    Some(Ok(Message::Frame(_))) => {}
                    None => return,
                    Some(Err(e)) => {
                        if let Some((code, reason)) = close_for(&e) {
                            close_with(&link, code, reason).await;
                        }
                        return;
                    }
                }
            }
            _ = ping.tick() => {
                rx.trim();
                if last_heard.elapsed() > heartbeat * 3 {
                    close_with(&link, close::IDLE_TIMEOUT, "no traffic").await;
                    return;
                }
                if !send_timed(&link, wire::ping()).await {
                    return;
                }
            }
        }
    }
}

/// Handles one client frame; `Err` for an invalid one (already answered with an error).
async fn handle(
    link: &Link,
    services: &Services,
    gw: &Gateway,
    actor: &Actor,
    conn: u64,
    t: &str,
    subscriptions: &mut Bucket,
) -> Result<(), ()> {
    let msg = match serde_json::from_str::<ClientMessage>(t) {
        Ok(m) => m,
        Err(e) => {
            send_error(link, "invalid_frame", format!("Not a valid frame: {}", brief(&e))).await;
            return Err(());
        }
    };
    match msg {
        ClientMessage::Hello { .. } => {
            send_error(link, "invalid_frame", "hello was already received").await;
            return Err(());
        }
        ClientMessage::Ping { nonce } => {
            send_timed(link, text(&ServerMessage::Pong { nonce })).await;
        }
        ClientMessage::Presence { status } => {
            let _ = gw.commands.send(Command::Presence { conn, status }).await;
        }
        ClientMessage::Active => {
            let _ = gw.commands.send(Command::Activity { conn }).await;
        }
        ClientMessage::PresenceSubscribe { user_ids } => {
            if subscriptions.take(SUBSCRIPTIONS, Instant::now()).is_err() {
                send_error(link, "rate_limited", "Too many presence subscriptions; send it again in a second.").await;
                return Err(());
            }
            // The first so many people, each once (a repeat does not take a place).
            let mut seen = std::collections::HashSet::new();
            let limited: Vec<_> = user_ids
                .into_iter()
                .filter(|u| seen.insert(*u))
                .take(gw.config.dispatcher.presence.max_subscriptions)
                .collect();
            match services.visible_people(actor, &limited).await {
                Ok(users) => {
                    let _ = gw.commands.send(Command::Follow { conn, users }).await;
                }
                Err(_) => {
                    send_error(link, "unavailable", "Try again shortly.").await;
                }
            }
        }
        ClientMessage::Typing { conversation_id, thread_root_id } => {
            if let Err(e) = services.may_type(actor, conversation_id, thread_root_id).await {
                let (code, why) = match e.code {
                    qiao_domain::ErrorCode::InvalidInput => ("invalid_frame", "No such thread in this conversation."),
                    _ => ("forbidden", "You cannot type in this conversation."),
                };
                send_error(link, code, why).await;
                return Err(());
            }
            let _ = gw.commands.send(Command::Activity { conn }).await;
            let _ =
                gw.commands.send(Command::Typing { conn, conversation: conversation_id, thread: thread_root_id }).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::bounded;

    #[tokio::test]
    async fn bounded_sets_a_limit_only_on_what_waits() {
        assert_eq!(bounded(Duration::from_millis(1), async { 7 }).await, Ok(7), "ready at once");
        let late = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            8
        };
        assert_eq!(bounded(Duration::from_secs(5), late).await, Ok(8), "waits, within the limit");
        let never = std::future::pending::<u8>();
        assert_eq!(bounded(Duration::from_millis(20), never).await, Err(()), "waits past it");
    }
}
