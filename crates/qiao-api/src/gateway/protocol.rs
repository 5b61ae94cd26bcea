//! The realtime protocol, version 1, over the WebSocket at `/api/v1/ws`. Every frame is a
//! UTF-8 JSON object whose `op` says what it is. Documented for API clients in
//! `docs/realtime.md`; the types are also in the OpenAPI document's components.

use qiao_domain::{ConversationId, MessageId, SessionId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const PROTOCOL_VERSION: u32 = 1;

/// Frames a client sends.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Must be the first frame, within 10 seconds of connecting.
    Hello {
        /// A bearer session token (sign in with `mode: bearer`). Browsers may omit it: the
        /// session cookie sent with the upgrade request is used instead.
        #[serde(default)]
        token: Option<String>,
        /// The `pos` of the last event this client processed: every event after it is sent
        /// (exactly once, in order) before live ones. Omit on a fresh start.
        #[serde(default)]
        resume_from: Option<i64>,
    },
    /// Answered with `pong` (browsers cannot send WebSocket ping frames).
    Ping {
        #[serde(default)]
        nonce: Option<String>,
    },
    /// This device's presence: `online`, `away` (the person is idle) or `dnd`.
    Presence { status: ClientStatus },
    /// The person is using this device (a key, a click, a scroll): it stays online, or comes
    /// back from away. Send at most once a minute while they are; a device with no activity
    /// for five minutes counts as away. Do-not-disturb stays on.
    Active,
    /// Replaces the set of people whose presence this connection follows (at most 500).
    PresenceSubscribe { user_ids: Vec<UserId> },
    /// The person is typing in a conversation (or a thread). Send every few seconds while
    /// typing; others see it for about 6 seconds after the last one.
    Typing {
        conversation_id: ConversationId,
        #[serde(default)]
        thread_root_id: Option<MessageId>,
    },
}

/// The presence a device can claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientStatus {
    Online,
    Away,
    /// Do not disturb (applies to all of the person's devices until they say `online`).
    Dnd,
}

/// A person's combined presence over their devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    Online,
    Away,
    Dnd,
    Offline,
}

/// Why a resume could not send the missed events (whatever the reason, the client reloads).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResyncReason {
    /// More events were missed than the server's resume window allows.
    TooFarBehind,
    /// `resume_from` is older than the event log keeps.
    Expired,
    /// `resume_from` was never given out by this server: negative, or ahead of its head (it
    /// was restored from a backup, or the client knew another server).
    UnknownPosition,
}

impl From<qiao_service::realtime::ResyncReason> for ResyncReason {
    fn from(r: qiao_service::realtime::ResyncReason) -> Self {
        use qiao_service::realtime::ResyncReason as R;
        match r {
            R::TooFarBehind => ResyncReason::TooFarBehind,
            R::Expired => ResyncReason::Expired,
            R::UnknownPosition => ResyncReason::UnknownPosition,
        }
    }
}

/// Frames the server sends (besides committed events, whose frame is `EventFrame` with
/// `op: "event"`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The answer to `hello`.
    Ready {
        protocol: u32,
        user_id: UserId,
        session_id: SessionId,
        /// The stream position now. A fresh client loads state over HTTP after this and
        /// applies events after `head`.
        head: i64,
        /// True if the events after `resume_from` follow (they do, up to the live ones).
        resumed: bool,
        /// The server pings about this often; a connection silent for three times as long is
        /// closed.
        heartbeat_ms: u64,
    },
    /// The missed events cannot be sent (see `reason`): reload state over HTTP, then continue
    /// from `head`. Live events follow.
    Resync {
        head: i64,
        reason: ResyncReason,
    },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
    },
    Presence {
        user_id: UserId,
        status: PresenceStatus,
    },
    Typing {
        conversation_id: ConversationId,
        #[serde(skip_serializing_if = "Option::is_none")]
        thread_root_id: Option<MessageId>,
        user_id: UserId,
    },
    /// A frame could not be handled; the connection stays open unless a close follows.
    Error {
        code: String,
        message: String,
        /// With `rate_limited` before a 4030 close: seconds to wait before connecting again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_secs: Option<u64>,
    },
}

/// WebSocket close codes the server uses.
pub mod close {
    /// No valid credentials. Sign in again.
    pub const UNAUTHENTICATED: u16 = 4001;
    /// The session ended (signed out, revoked, or the account was disabled).
    pub const SESSION_ENDED: u16 = 4003;
    /// The client did not read fast enough; reconnect with `resume_from`.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// Nothing was heard from the client for too long, or no `hello` within 10 seconds of
    /// the upgrade (the session is not in question: reconnect).
    pub const IDLE_TIMEOUT: u16 = 4009;
    /// The account became a guest or stopped being one, which changes what it may receive;
    /// reconnect with `resume_from`.
    pub const ACCESS_CHANGED: u16 = 4010;
    /// The person already holds the most connections allowed (32 per node by default): close
    /// another tab or device first.
    pub const TOO_MANY_CONNECTIONS: u16 = 4029;
    /// The person opened connections too often lately (bursts of 40, then one a second per
    /// node): wait the seconds the preceding `rate_limited` error frame names, then reconnect.
    pub const TOO_MANY_ATTEMPTS: u16 = 4030;
    /// Too many invalid frames (frames beyond the rate limit count as invalid), or a binary
    /// frame.
    pub const PROTOCOL_ERROR: u16 = 4400;
    /// A frame was larger than the limit (32 KiB).
    pub const TOO_BIG: u16 = 1009;
    /// A frame broke the WebSocket protocol itself (RFC 6455): an unmasked client frame,
    /// reserved bits set, an unknown opcode, a fragmented or oversized control frame, a
    /// continuation with nothing to continue, a malformed close frame.
    pub const WEBSOCKET_PROTOCOL_ERROR: u16 = 1002;
    /// A text frame (or the reason of a close frame) was not valid UTF-8.
    pub const INVALID_TEXT: u16 = 1007;
    /// The server is shutting down; reconnect (to another node) with `resume_from`.
    pub const GOING_AWAY: u16 = 1001;
}

impl ServerMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn error(code: &str, message: impl Into<String>) -> ServerMessage {
        ServerMessage::Error { code: code.to_owned(), message: message.into(), retry_after_secs: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_parse_strictly() {
        let hello: ClientMessage = serde_json::from_str(r#"{"op":"hello","token":"t","resume_from":5}"#).unwrap();
        assert_eq!(hello, ClientMessage::Hello { token: Some("t".into()), resume_from: Some(5) });
        assert!(serde_json::from_str::<ClientMessage>(r#"{"op":"hello"}"#).is_ok());
        assert!(serde_json::from_str::<ClientMessage>(r#"{"op":"launch_missiles"}"#).is_err());
        assert!(serde_json::from_str::<ClientMessage>(r#"{"op":"ping","extra":1}"#).is_err());
        assert!(serde_json::from_str::<ClientMessage>(r#"{"op":"presence","status":"asleep"}"#).is_err());
    }

    #[test]
    fn server_frames_are_tagged() {
        let v: serde_json::Value = serde_json::from_str(&ServerMessage::Pong { nonce: None }.to_json()).unwrap();
        assert_eq!(v, serde_json::json!({"op": "pong"}));
        let v: serde_json::Value = serde_json::from_str(&ServerMessage::error("invalid_frame", "x").to_json()).unwrap();
        assert_eq!(v["op"], "error");
    }
}
