//! People: roles, account status, the directory entry, and the rules for usernames, e-mail
//! addresses and passwords.

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::{DepartmentId, Error, Millis, Result, UserId, text};

/// What a person may do in the organisation. Ordered from most to least powerful.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    /// Full control, including other owners and admins.
    Owner,
    /// Manages people and departments, except owners.
    Admin,
    /// Manages the departments in `managed_department_ids` and their subtrees, and the
    /// members and guests whose primary department is there.
    DepartmentAdmin,
    /// Staff.
    Member,
    /// An external partner: sees only what they were explicitly invited to.
    Guest,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Owner, Role::Admin, Role::DepartmentAdmin, Role::Member, Role::Guest];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::DepartmentAdmin => "department_admin",
            Role::Member => "member",
            Role::Guest => "guest",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Owner or admin: organisation-wide administration.
    pub fn is_org_admin(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }

    pub fn is_guest(self) -> bool {
        self == Role::Guest
    }
}

/// Whether an account can sign in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum UserStatus {
    Active,
    /// Cannot sign in; all sessions were ended when it was disabled.
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<UserStatus> {
        match s {
            "active" => Some(UserStatus::Active),
            "disabled" => Some(UserStatus::Disabled),
            _ => None,
        }
    }
}

/// A person as the directory shows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: UserId,
    /// Lower-case sign-in handle, unique.
    pub username: String,
    /// Lower-case e-mail address, unique when present.
    pub email: Option<String>,
    pub display_name: String,
    /// Job title, may be empty.
    pub title: String,
    pub role: Role,
    pub status: UserStatus,
    pub primary_department_id: DepartmentId,
    /// Further departments the person belongs to (never includes the primary one).
    pub secondary_department_ids: Vec<DepartmentId>,
    /// For department admins: the roots of the subtrees they manage. Empty otherwise.
    pub managed_department_ids: Vec<DepartmentId>,
    /// Set after an administrator reset the password: the user must choose a new one.
    pub must_change_password: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl User {
    /// Every department this person belongs to, primary first.
    pub fn department_ids(&self) -> impl Iterator<Item = DepartmentId> + '_ {
        std::iter::once(self.primary_department_id).chain(self.secondary_department_ids.iter().copied())
    }
}

pub const USERNAME_MAX: usize = 32;
pub const DISPLAY_NAME_MAX: usize = 64;
pub const TITLE_MAX: usize = 64;
pub const EMAIL_MAX: usize = 254;
pub const PASSWORD_MIN: usize = 8;
/// Bounded so that hashing cost cannot be driven up by huge inputs.
pub const PASSWORD_MAX: usize = 256;
/// How many secondary departments one person may belong to.
pub const SECONDARY_DEPARTMENTS_MAX: usize = 20;
/// Departments one department admin manages, at most.
pub const MANAGED_DEPARTMENTS_MAX: usize = 50;

/// Usernames: 2–32 of `a-z 0-9 . _ -`, starting with a letter or digit. Case-folded.
pub fn normalize_username(input: &str) -> Result<String> {
    let name = input.trim().to_ascii_lowercase();
    let len = name.chars().count();
    if !(2..=USERNAME_MAX).contains(&len) || input.chars().count() > USERNAME_MAX {
        return Err(Error::invalid("username", format!("must be 2 to {USERNAME_MAX} characters")));
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-');
    if !name.chars().all(ok_char) {
        return Err(Error::invalid("username", "may contain only letters a-z, digits, '.', '_' and '-'"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(Error::invalid("username", "must start with a letter or digit"));
    }
    Ok(name)
}

/// Usernames that message text reads as everyone (`@all`, `@channel`): nobody may take them,
/// or mentioning that person would be impossible and their name would reach everyone.
pub const RESERVED_USERNAMES: [&str; 2] = ["all", "channel"];

/// A username for a new account or a rename: [`normalize_username`], and not reserved.
pub fn new_username(input: &str) -> Result<String> {
    let name = normalize_username(input)?;
    // Mentions read `@all-` or `@all.` as `@all` (a sentence's end), so those are taken too.
    if RESERVED_USERNAMES.contains(&name.trim_end_matches(['.', '-'])) {
        return Err(Error::invalid("username", format!("\"{name}\" is reserved: @{name} mentions everyone")));
    }
    Ok(name)
}

/// An optional e-mail address: a blank one means none.
pub fn optional_email(input: &str) -> Result<Option<String>> {
    if input.trim().is_empty() && input.chars().count() <= EMAIL_MAX {
        return Ok(None);
    }
    normalize_email(input).map(Some)
}

/// A plausible e-mail address (one `@`, a dotted domain, no spaces), lower-cased.
pub fn normalize_email(input: &str) -> Result<String> {
    // Compatibility-normalised (NFKC) before lower-casing: a full-width `ａｌｉｃｅ＠corp.cn`, or
    // an accented letter written as letter plus accent, is the same address as the plain
    // form, not a look-alike beside it.
    let email = input.trim().nfkc().collect::<String>().to_lowercase();
    let invalid = || Error::invalid("email", "is not a valid e-mail address");
    // Direction controls and invisible characters would make an address that looks like
    // another's (admin\u{200b}@corp.cn) and counts as a different one.
    let hidden =
        |c: char| c.is_whitespace() || c.is_control() || text::is_direction_control(c) || text::is_invisible(c);
    if input.chars().count() > EMAIL_MAX || email.chars().count() > EMAIL_MAX || email.chars().any(hidden) {
        return Err(invalid());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return Err(invalid());
    }
    Ok(email)
}

pub fn validate_display_name(input: &str) -> Result<String> {
    text::single_line("display_name", input, 1, DISPLAY_NAME_MAX)
}

pub fn validate_title(input: &str) -> Result<String> {
    text::single_line("title", input, 0, TITLE_MAX)
}

/// Password policy: 8–256 characters, not the username. (Checked before hashing.)
pub fn validate_password(field: &'static str, password: &str, username: Option<&str>) -> Result<()> {
    let len = password.chars().count();
    if len < PASSWORD_MIN {
        return Err(Error::invalid(field, format!("must be at least {PASSWORD_MIN} characters")));
    }
    if len > PASSWORD_MAX {
        return Err(Error::invalid(field, format!("must be at most {PASSWORD_MAX} characters")));
    }
    if username.is_some_and(|u| password.eq_ignore_ascii_case(u)) {
        return Err(Error::invalid(field, "must not be the username"));
    }
    Ok(())
}

/// The text the directory search matches against: each field lower-cased and folded
/// (`crate::fold`: full-width letters, traditional characters), one per line, then the
/// name's pinyin (`crate::pinyin`) run together, with spaces between syllables, and as
/// initials, so `zhangwei`, `zhang wei` and `zw` all find 张伟.
pub fn search_key(username: &str, display_name: &str, email: Option<&str>, title: &str) -> String {
    let mut key = String::with_capacity(64);
    for part in [username, display_name, email.unwrap_or(""), title] {
        if !part.is_empty() {
            key.push_str(&crate::fold::for_matching(part));
            key.push('\n');
        }
    }
    if let Some(syllables) = crate::pinyin::of_name(display_name) {
        crate::pinyin::push_key_lines(&mut key, &syllables);
    }
    key
}

/// Whether `name` (as typed: `张伟`, `張偉`, `zhangwei`, `zhang wei`) names a person with
/// this display name: the whole name, folded, or its whole pinyin (not initials, which name
/// too many people). Used where a name stands for people, as `from:` does in search.
pub fn is_named(display_name: &str, name: &str) -> bool {
    let name = crate::fold::for_matching(name);
    if name.is_empty() {
        return false;
    }
    if crate::fold::for_matching(display_name) == name {
        return true;
    }
    crate::pinyin::of_name(display_name).is_some_and(|s| s.concat() == name || s.join(" ") == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_are_named_by_their_whole_name_or_its_pinyin() {
        for name in ["张伟", "張偉", " 张伟 ", "zhangwei", "ZhangWei", "zhang wei"] {
            assert!(is_named("张伟", name), "{name}");
        }
        for name in ["张", "zw", "zhang", "张伟伟", ""] {
            assert!(!is_named("张伟", name), "{name}");
        }
        assert!(is_named("Lucy Wang", "lucy wang") && !is_named("Lucy Wang", "lucy"));
    }

    #[test]
    fn usernames() {
        assert_eq!(normalize_username(" Alice.W ").unwrap(), "alice.w");
        assert!(normalize_username("a").is_err());
        assert!(normalize_username("_alice").is_err());
        assert!(normalize_username("张三").is_err());
        assert!(normalize_username("al ice").is_err());
        assert!(normalize_username(&"a".repeat(33)).is_err());
        assert_eq!(normalize_username("li-lei_2").unwrap(), "li-lei_2");
        assert!(new_username("All").is_err() && new_username("channel").is_err());
        assert!(new_username("all-").is_err() && new_username("channel..").is_err());
        assert_eq!(new_username("allan").unwrap(), "allan");
    }

    #[test]
    fn emails() {
        assert_eq!(normalize_email("Li.Lei@Example.COM").unwrap(), "li.lei@example.com");
        // Look-alikes are the same address: full-width letters and `＠`, a letter and its
        // accent written apart (NFD) or together (NFC).
        assert_eq!(normalize_email("ａｌｉｃｅ＠Corp.cn").unwrap(), "alice@corp.cn");
        assert_eq!(normalize_email("jose\u{301}@corp.cn").unwrap(), normalize_email("jos\u{e9}@corp.cn").unwrap());
        for bad in [
            "",
            "a",
            "a@b",
            "@b.cn",
            "a@@b.cn",
            "a@.b",
            "a@b.",
            "a b@c.cn",
            "a@b..cn",
            "admin\u{200b}@corp.cn",
            "a\u{202e}@b.cn",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords() {
        assert!(validate_password("password", "short", None).is_err());
        assert!(validate_password("password", "alice123", Some("ALICE123")).is_err());
        assert!(validate_password("password", "正确的马电池订书钉", None).is_ok());
        assert!(validate_password("password", &"x".repeat(257), None).is_err());
    }

    #[test]
    fn roles_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn search_key_folds_case() {
        let k = search_key("lilei", "Li Lei 李雷", Some("li@x.cn"), "Engineer");
        assert!(k.contains("li lei 李雷"));
        assert!(k.contains("engineer"));
        let k = search_key("chanwai", "陳偉 Ｃｈａｎ", None, "經理");
        assert_eq!(k, "chanwai\n陈伟 chan\n经理\nchenwei\nchen wei\ncw\n");
    }
}
