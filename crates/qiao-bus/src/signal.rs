//! What nodes tell each other besides committed events: presence and typing. Best effort:
//! a lost signal is repaired by the next full presence snapshot, or does not matter.

use std::fmt;

use qiao_domain::{ConversationId, MessageId, UserId};
use serde::{Deserialize, Serialize};

/// A node's identity on the bus: random per process, so a restarted node is a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub u64);

impl NodeId {
    pub fn random() -> NodeId {
        let mut b = [0u8; 8];
        // Without the OS's randomness, the time still tells processes apart.
        if getrandom::fill(&mut b).is_err() {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            b = (t.as_nanos() as u64 ^ u64::from(std::process::id())).to_le_bytes();
        }
        NodeId(u64::from_le_bytes(b))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A person's presence as seen from the devices connected to one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Online,
    Away,
    Dnd,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Signal {
    /// Presence of people connected to `node`. A `full` snapshot replaces everything known
    /// of that node (sent every few seconds, it is also the node's heartbeat); otherwise only
    /// the people listed changed (`None`: no device left on that node).
    Presence { node: NodeId, full: bool, users: Vec<(UserId, Option<Status>)> },
    /// Do-not-disturb settings `(person, on, when in ms)`: one that a device on `node` just
    /// changed, or (with every full presence snapshot) all that `node` knows to be on and those
    /// turned off lately, so a node that missed a change or started later catches up. It is
    /// the person's choice, so every node applies it to their devices there; the latest
    /// setting wins.
    DoNotDisturb { node: NodeId, settings: Vec<(UserId, bool, i64)> },
    /// Someone is typing, for the other nodes' connections in that conversation.
    Typing { node: NodeId, conversation_id: ConversationId, thread_root_id: Option<MessageId>, user_id: UserId },
    /// The node is shutting down: forget its presence now rather than after the timeout.
    Gone { node: NodeId },
    /// A failed sign-in (or wrong current password) counted against an account and an
    /// address, so that the lockout holds whichever node the attempts go to.
    SignInFailed { node: NodeId, account: String, address: String, at: i64 },
    /// A successful sign-in cleared an account's failures.
    SignedIn { node: NodeId, account: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_round_trip_as_json() {
        let s = Signal::Presence {
            node: NodeId(u64::MAX),
            full: true,
            users: vec![(UserId::new(), Some(Status::Dnd)), (UserId::new(), None)],
        };
        let json = serde_json::to_vec(&s).unwrap();
        assert_eq!(serde_json::from_slice::<Signal>(&json).unwrap(), s);
        assert_ne!(NodeId::random(), NodeId::random());
    }
}
