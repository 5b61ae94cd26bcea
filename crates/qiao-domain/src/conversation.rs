//! Conversations: channels of every kind, DMs and group DMs, and who is in them.

use serde::{Deserialize, Serialize};

use crate::{ConversationId, DepartmentId, Error, Millis, Result, UserId, text};

/// What kind of conversation, which decides who may find, join and post.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ConversationKind {
    /// Any staff member can find, read and join it.
    Public,
    /// By invitation; invisible to everyone else.
    Private,
    /// Only channel admins and chosen posters post; everyone reads and reacts.
    Announcement,
    /// Two people (or one, talking to themself); exactly one per pair.
    Dm,
    /// A small group of people without a name of its own (at most 50).
    Group,
    /// One per department, created with it; membership follows the department tree.
    Department,
    /// Cross-department work: any mix of whole departments and individual people.
    Project,
}

impl ConversationKind {
    pub const ALL: [ConversationKind; 7] = [
        ConversationKind::Public,
        ConversationKind::Private,
        ConversationKind::Announcement,
        ConversationKind::Dm,
        ConversationKind::Group,
        ConversationKind::Department,
        ConversationKind::Project,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConversationKind::Public => "public",
            ConversationKind::Private => "private",
            ConversationKind::Announcement => "announcement",
            ConversationKind::Dm => "dm",
            ConversationKind::Group => "group",
            ConversationKind::Department => "department",
            ConversationKind::Project => "project",
        }
    }

    pub fn parse(s: &str) -> Option<ConversationKind> {
        ConversationKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// DMs and group DMs: no name, no admins, fixed purpose.
    pub fn is_direct(self) -> bool {
        matches!(self, ConversationKind::Dm | ConversationKind::Group)
    }
}

/// A member's standing in one conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MemberRole {
    /// Manages the channel: settings, members, roles, archiving.
    Admin,
    /// May post in an announcement channel.
    Poster,
    Member,
}

impl MemberRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Admin => "admin",
            MemberRole::Poster => "poster",
            MemberRole::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<MemberRole> {
        match s {
            "admin" => Some(MemberRole::Admin),
            "poster" => Some(MemberRole::Poster),
            "member" => Some(MemberRole::Member),
            _ => None,
        }
    }
}

/// A department whose people (optionally with its whole subtree) belong to a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LinkedDepartment {
    pub department_id: DepartmentId,
    pub include_subdepartments: bool,
}

/// A conversation as every member sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Conversation {
    pub id: ConversationId,
    pub kind: ConversationKind,
    /// Empty for DMs and unnamed group DMs.
    pub name: String,
    pub topic: String,
    pub description: String,
    /// For department channels: their department.
    pub department_id: Option<DepartmentId>,
    /// Departments whose people are members (department and project channels).
    pub linked_departments: Vec<LinkedDepartment>,
    /// For DMs and group DMs: everyone in it.
    pub participant_ids: Vec<UserId>,
    pub created_by: Option<UserId>,
    pub archived_at: Option<Millis>,
    /// The conversation's latest sequence number (every change takes the next one).
    pub last_seq: i64,
    pub last_message_at: Option<Millis>,
    pub member_count: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Conversation {
    pub fn is_archived(&self) -> bool {
        self.archived_at.is_some()
    }
}

/// One person's membership of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    pub user_id: UserId,
    pub role: MemberRole,
    /// Added by invitation, by joining, or at creation.
    pub direct: bool,
    /// Present because of a linked department (cannot leave while that holds).
    pub via_department: bool,
    pub joined_at: Millis,
}

/// The caller's own state in a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MyState {
    pub role: MemberRole,
    pub direct: bool,
    pub via_department: bool,
    /// Everything up to this sequence number has been read (on every device).
    pub read_seq: i64,
    /// Unread top-level messages from others (counted over the latest changes; clients show
    /// large values as "999+").
    pub unread_count: i64,
    /// Unread messages that mention the caller, their department or the whole channel.
    pub mention_count: i64,
}

/// Conversation names: 1–80 characters on one line.
pub const NAME_MAX: usize = 80;
pub const TOPIC_MAX: usize = 250;
pub const DESCRIPTION_MAX: usize = 1000;
/// Most people in a group DM (the creator included).
pub const GROUP_MAX: usize = 50;
/// Most people added in one request.
pub const INVITE_BATCH_MAX: usize = 100;
/// Most departments linked to one project channel.
pub const LINKED_DEPARTMENTS_MAX: usize = 50;

pub fn validate_name(input: &str) -> Result<String> {
    text::single_line("name", input, 1, NAME_MAX)
}

/// A group DM's name is optional: blank means none (members' names are shown instead).
pub fn validate_group_name(input: &str) -> Result<String> {
    text::single_line("name", input, 0, NAME_MAX)
}

pub fn validate_topic(input: &str) -> Result<String> {
    text::single_line("topic", input, 0, TOPIC_MAX)
}

/// Descriptions may span lines. The length counts the text as sent (a CR LF is two).
pub fn validate_description(input: &str) -> Result<String> {
    if input.chars().count() > DESCRIPTION_MAX {
        return Err(Error::invalid("description", format!("must be at most {DESCRIPTION_MAX} characters")));
    }
    let d = input.replace("\r\n", "\n");
    // Anywhere in the text, not only inside what trimming leaves: a lone CR is refused.
    if d.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Error::invalid("description", "must not contain control characters"));
    }
    Ok(d.trim().to_owned())
}

/// The text channel browsing matches against: the name lower-cased and folded
/// (`crate::fold`: full-width letters, traditional characters), then its pinyin run
/// together, with spaces and as initials (`xiangmuzu`, `xiang mu zu`, `xmz` find 项目组).
/// Empty for an unnamed conversation.
pub fn search_key(name: &str) -> String {
    let mut key = crate::fold::for_matching(name);
    if key.is_empty() {
        return key;
    }
    key.push('\n');
    if let Some(syllables) = crate::pinyin::of_text(name) {
        crate::pinyin::push_key_lines(&mut key, &syllables);
    }
    key
}

/// The key that makes a 1:1 DM unique per pair (order-independent).
pub fn dm_key(a: UserId, b: UserId) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("{}:{}", lo.0.simple(), hi.0.simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_linked_department_refuses_unknown_fields() {
        let ok = r#"{"department_id":"0193f2c1-0000-7000-8000-000000000000","include_subdepartments":true}"#;
        assert!(serde_json::from_str::<LinkedDepartment>(ok).is_ok());
        let extra = r#"{"department_id":"0193f2c1-0000-7000-8000-000000000000","include_subdepartments":true,"x":1}"#;
        assert!(serde_json::from_str::<LinkedDepartment>(extra).is_err(), "as every request body does");
    }

    #[test]
    fn search_keys_fold_and_spell_in_pinyin() {
        assert_eq!(search_key("項目組 Alpha"), "项目组 alpha\nxiangmuzu\nxiang mu zu\nxmz\n");
        assert_eq!(search_key("ＯＰＳ"), "ops\n");
        assert_eq!(search_key("单元测试"), "单元测试\ndanyuanceshi\ndan yuan ce shi\ndycs\n", "no surname reading");
        assert_eq!(search_key(""), "");
    }

    #[test]
    fn kinds_and_roles_round_trip() {
        for k in ConversationKind::ALL {
            assert_eq!(ConversationKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        for r in [MemberRole::Admin, MemberRole::Poster, MemberRole::Member] {
            assert_eq!(MemberRole::parse(r.as_str()), Some(r));
        }
    }

    #[test]
    fn dm_keys_ignore_order() {
        let (a, b) = (UserId::new(), UserId::new());
        assert_eq!(dm_key(a, b), dm_key(b, a));
        assert_ne!(dm_key(a, b), dm_key(a, a));
    }

    #[test]
    fn descriptions_keep_lines() {
        assert_eq!(validate_description(" a\r\nb ").unwrap(), "a\nb");
        assert!(validate_description("a\u{7}b").is_err());
        assert!(validate_description(&"x".repeat(1001)).is_err());
    }
}
