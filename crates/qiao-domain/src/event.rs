//! Committed changes, as the realtime stream delivers them.
//!
//! Every change that clients show is written, in the same transaction as the change itself,
//! as an event with a global position `pos` (gap-free, in commit order) and, for
//! conversation events, the conversation's own gap-free `seq`. The event is encoded to its
//! wire frame exactly once, when it is written; the stored frame is what a live client
//! receives and what a resuming client is sent.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::conversation::{Conversation, Member};
use crate::message::{Draft, Message, ThreadSummary};
use crate::org::{Department, Org};
use crate::user::User;
use crate::{ConversationId, DepartmentId, MessageId, Millis, SessionId, UserId};

/// Who may receive an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Audience {
    /// The members of one conversation.
    Conversation(ConversationId),
    /// One person (all their devices).
    User(UserId),
    /// Every non-guest account.
    Staff,
    /// Everyone signed in.
    Everyone,
}

impl Audience {
    pub fn kind(&self) -> &'static str {
        match self {
            Audience::Conversation(_) => "conversation",
            Audience::User(_) => "user",
            Audience::Staff => "staff",
            Audience::Everyone => "everyone",
        }
    }
}

/// What happened. The `type` tag is the name clients switch on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventData {
    #[serde(rename = "org.updated")]
    OrgUpdated { org: Org },
    #[serde(rename = "user.created")]
    UserCreated { user: User },
    /// Profile, role, departments or status changed.
    #[serde(rename = "user.updated")]
    UserUpdated { user: User },
    #[serde(rename = "department.created")]
    DepartmentCreated { department: Department },
    /// Renamed or moved.
    #[serde(rename = "department.updated")]
    DepartmentUpdated { department: Department },
    #[serde(rename = "department.deleted")]
    DepartmentDeleted { department_id: DepartmentId },
    /// One of the recipient's sessions ended (sign-out, revocation, disabling); clients
    /// holding that session must stop using it.
    #[serde(rename = "session.revoked")]
    SessionRevoked { session_id: SessionId },

    // Conversation events: delivered to the conversation's members, each with the
    // conversation's next sequence number.
    /// A conversation was created with these members.
    #[serde(rename = "conversation.created")]
    ConversationCreated { conversation: Conversation, members: Vec<Member> },
    /// Renamed, topic or description changed, archived or unarchived, departments relinked.
    #[serde(rename = "conversation.updated")]
    ConversationUpdated { conversation: Conversation },
    /// People joined or were added (the conversation is included for the newcomers).
    #[serde(rename = "members.added")]
    MembersAdded { conversation: Conversation, members: Vec<Member> },
    #[serde(rename = "members.removed")]
    MembersRemoved { conversation_id: ConversationId, user_ids: Vec<UserId> },
    /// A member's role or how they belong changed.
    #[serde(rename = "member.updated")]
    MemberUpdated { conversation_id: ConversationId, member: Member },
    /// A new message; for a thread reply, `thread` is the root's updated summary.
    #[serde(rename = "message.created")]
    MessageCreated {
        message: Message,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thread: Option<ThreadSummary>,
    },
    /// Edited, pinned or unpinned, one of its files deleted, or (a thread's root) its thread
    /// summary changed because a reply was deleted. Replace the message as a whole.
    #[serde(rename = "message.updated")]
    MessageUpdated { message: Message },
    /// Deleted: the body is gone; the message stays as a tombstone.
    #[serde(rename = "message.deleted")]
    MessageDeleted { message_id: MessageId, thread_root_id: Option<MessageId>, deleted_at: Millis },
    #[serde(rename = "reaction.added")]
    ReactionAdded { message_id: MessageId, emoji: String, user_id: UserId },
    #[serde(rename = "reaction.removed")]
    ReactionRemoved { message_id: MessageId, emoji: String, user_id: UserId },

    // Personal events: delivered to one person's devices.
    /// The recipient left or was removed from a conversation.
    #[serde(rename = "conversation.removed")]
    ConversationRemoved { conversation_id: ConversationId },
    /// The recipient's read position in a conversation moved (on another device, perhaps).
    #[serde(rename = "read.updated")]
    ReadUpdated { conversation_id: ConversationId, read_seq: i64 },
    /// The recipient's state in a thread changed: followed, unfollowed or read.
    #[serde(rename = "thread.state")]
    ThreadState { conversation_id: ConversationId, root_id: MessageId, following: bool, read_seq: i64 },
    /// The recipient's draft in a conversation or thread changed (an empty body: cleared).
    #[serde(rename = "draft.updated")]
    DraftUpdated { draft: Draft },
}

impl EventData {
    /// The event name (the `type` tag).
    pub fn name(&self) -> &'static str {
        match self {
            EventData::OrgUpdated { .. } => "org.updated",
            EventData::UserCreated { .. } => "user.created",
            EventData::UserUpdated { .. } => "user.updated",
            EventData::DepartmentCreated { .. } => "department.created",
            EventData::DepartmentUpdated { .. } => "department.updated",
            EventData::DepartmentDeleted { .. } => "department.deleted",
            EventData::SessionRevoked { .. } => "session.revoked",
            EventData::ConversationCreated { .. } => "conversation.created",
            EventData::ConversationUpdated { .. } => "conversation.updated",
            EventData::MembersAdded { .. } => "members.added",
            EventData::MembersRemoved { .. } => "members.removed",
            EventData::MemberUpdated { .. } => "member.updated",
            EventData::MessageCreated { .. } => "message.created",
            EventData::MessageUpdated { .. } => "message.updated",
            EventData::MessageDeleted { .. } => "message.deleted",
            EventData::ReactionAdded { .. } => "reaction.added",
            EventData::ReactionRemoved { .. } => "reaction.removed",
            EventData::ConversationRemoved { .. } => "conversation.removed",
            EventData::ReadUpdated { .. } => "read.updated",
            EventData::ThreadState { .. } => "thread.state",
            EventData::DraftUpdated { .. } => "draft.updated",
        }
    }
}

/// The `op` of an event frame: always `"event"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventOp {
    Event,
}

/// The wire frame of a committed event: `{"op":"event","pos":..,"at":..,"seq":..,
/// "conversation_id":..,"data":{"type":..,..}}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventFrame {
    pub op: EventOp,
    /// Global stream position: gap-free across the whole organisation, in commit order.
    pub pos: i64,
    /// When it was committed.
    pub at: Millis,
    /// For conversation events.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub conversation_id: Option<ConversationId>,
    /// For conversation events: the conversation's own gap-free sequence number.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub seq: Option<i64>,
    pub data: EventData,
}

/// A committed event ready for delivery.
#[derive(Clone, Debug)]
pub struct Event {
    pub pos: i64,
    pub audience: Audience,
    pub seq: Option<i64>,
    /// The encoded [`EventFrame`] (UTF-8 JSON), shared by every recipient.
    pub frame: Bytes,
    /// The same event, typed, for in-process consumers (caches, the search indexer).
    pub data: std::sync::Arc<EventData>,
}

impl Event {
    /// Rebuilds an event from its frame and its audience's kind (as the log stores it and the
    /// cluster bus carries it); `user` is the recipient of a `user` event. None when the parts
    /// do not make an event.
    pub fn decode(kind: &str, user: Option<UserId>, frame: impl Into<Bytes>) -> Option<Event> {
        let frame: Bytes = frame.into();
        let parsed: EventFrame = serde_json::from_slice(&frame).ok()?;
        let audience = match kind {
            "conversation" => Audience::Conversation(parsed.conversation_id?),
            "user" => Audience::User(user?),
            "staff" => Audience::Staff,
            "everyone" => Audience::Everyone,
            _ => return None,
        };
        Some(Event { pos: parsed.pos, audience, seq: parsed.seq, frame, data: std::sync::Arc::new(parsed.data) })
    }
}

/// Encodes the frame of an event at `pos` (UTF-8 JSON).
pub fn encode_frame(pos: i64, at: Millis, audience: &Audience, seq: Option<i64>, data: &EventData) -> String {
    #[derive(Serialize)]
    struct FrameRef<'a> {
        op: &'static str,
        pos: i64,
        at: Millis,
        #[serde(skip_serializing_if = "Option::is_none")]
        conversation_id: Option<ConversationId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<i64>,
        data: &'a EventData,
    }
    let conversation_id = match audience {
        Audience::Conversation(c) => Some(*c),
        _ => None,
    };
    let frame = FrameRef { op: "event", pos, at, conversation_id, seq, data };
    // Serialising plain structs of strings, numbers and ids cannot fail.
    serde_json::to_string(&frame).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let d = DepartmentId::new();
        let data = EventData::DepartmentDeleted { department_id: d };
        let bytes = encode_frame(7, 1000, &Audience::Staff, None, &data);
        let frame: EventFrame = serde_json::from_str(&bytes).unwrap();
        assert_eq!(frame.op, EventOp::Event);
        assert_eq!(frame.pos, 7);
        assert_eq!(frame.data, data);
        assert_eq!(frame.data.name(), "department.deleted");
        let v: serde_json::Value = serde_json::from_str(&bytes).unwrap();
        assert_eq!(v["data"]["type"], "department.deleted");
        assert!(v.get("conversation_id").is_none());
    }
}
