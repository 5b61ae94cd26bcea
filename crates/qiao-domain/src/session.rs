//! Signed-in devices as their owner sees them.

use serde::{Deserialize, Serialize};

use crate::{Millis, SessionId};

/// How the session's token travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SessionKind {
    /// An HttpOnly cookie set for a browser; state changes need the CSRF header.
    Cookie,
    /// A bearer token handed to an API client.
    Bearer,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Cookie => "cookie",
            SessionKind::Bearer => "bearer",
        }
    }

    pub fn parse(s: &str) -> Option<SessionKind> {
        match s {
            "cookie" => Some(SessionKind::Cookie),
            "bearer" => Some(SessionKind::Bearer),
            _ => None,
        }
    }
}

/// One signed-in device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    pub id: SessionId,
    pub kind: SessionKind,
    /// A label for the device, from the client or its User-Agent.
    pub device_name: String,
    /// The address the session was created from.
    pub ip: String,
    pub created_at: Millis,
    pub last_used_at: Millis,
    pub expires_at: Millis,
    /// True for the session making the request.
    pub current: bool,
}

pub const DEVICE_NAME_MAX: usize = 100;

/// A device name a client gives: one line of at most [`DEVICE_NAME_MAX`] characters
/// (trimmed, direction controls dropped), as any label.
pub fn validate_device_name(input: &str) -> crate::Result<String> {
    crate::text::single_line("device_name", input, 0, DEVICE_NAME_MAX)
}

/// A printable device label: the client's, else a shortened User-Agent, else "Unknown device".
pub fn device_label(client_label: Option<&str>, user_agent: Option<&str>) -> String {
    let pick = client_label
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .or_else(|| user_agent.map(str::trim).filter(|s| !s.is_empty()))
        .unwrap_or("Unknown device");
    pick.chars().filter(|&c| !c.is_control() && !crate::text::is_direction_control(c)).take(DEVICE_NAME_MAX).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_labels() {
        assert_eq!(device_label(Some(" 我的电脑 "), Some("curl")), "我的电脑");
        assert_eq!(device_label(None, Some("evil\u{202e}agent")), "evilagent");
        assert_eq!(device_label(None, Some("curl/8")), "curl/8");
        assert_eq!(device_label(Some(""), None), "Unknown device");
        assert_eq!(device_label(Some(&"x".repeat(300)), None).len(), DEVICE_NAME_MAX);
    }
}
