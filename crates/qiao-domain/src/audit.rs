//! The audit log: who did what security-relevant thing, when, from where.

use serde::{Deserialize, Serialize};

use crate::{AuditId, Millis, UserId};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: AuditId,
    pub at: Millis,
    /// `None` for actions taken by the system or the command line.
    pub actor_id: Option<UserId>,
    /// A dotted action name such as `user.disable` or `session.sign_in_failed`.
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// The client address, when the action came over the network.
    pub ip: Option<String>,
    /// Action-specific facts (never secrets).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: serde_json::Value,
}
