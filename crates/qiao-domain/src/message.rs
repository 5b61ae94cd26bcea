//! Messages: the body and its rules, mentions, reactions, threads.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{ConversationId, DepartmentId, Error, MessageId, Millis, Result, UserId};

/// A message as members see it. Deleted messages keep their place as tombstones with an
/// empty body. Optional fields without a value are left out.
// (A message goes to every member's every device: leaving out the nulls cuts a fifth of a
// typical frame, bytes every connection's write copies twice.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    /// The conversation sequence number of its creation: messages sort by it.
    pub seq: i64,
    pub sender_id: UserId,
    /// For replies: the thread's root message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_root_id: Option<MessageId>,
    /// Markdown; empty once deleted.
    pub body: String,
    pub mentions: Mentions,
    /// The sender's idempotency key, echoed so a client can match its optimistic copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
    pub created_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_by: Option<UserId>,
    pub reactions: Vec<Reaction>,
    /// For thread roots with replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<ThreadSummary>,
    /// Files it carries (none once deleted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<crate::file::FileInfo>,
}

/// Who a message mentions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Mentions {
    pub user_ids: Vec<UserId>,
    pub department_ids: Vec<DepartmentId>,
    /// `@channel` / `@all` / `@所有人`.
    pub channel: bool,
}

impl Mentions {
    pub fn is_empty(&self) -> bool {
        self.user_ids.is_empty() && self.department_ids.is_empty() && !self.channel
    }
}

/// One emoji's reactions on a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reaction {
    pub emoji: String,
    pub count: i64,
    /// Who reacted (the first [`REACTION_USERS_SHOWN`] of them, oldest first).
    pub user_ids: Vec<UserId>,
}

/// A thread root's replies at a glance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThreadSummary {
    pub reply_count: i64,
    pub last_reply_at: Option<Millis>,
    /// Everyone who replied (at most [`THREAD_PARTICIPANTS_SHOWN`]), earliest first.
    pub participant_ids: Vec<UserId>,
}

/// Longest message body, in characters.
pub const BODY_MAX: usize = 10_000;
pub const CLIENT_KEY_MAX: usize = 64;
pub const EMOJI_MAX: usize = 32;
/// Distinct emoji on one message.
pub const EMOJI_PER_MESSAGE_MAX: i64 = 50;
pub const REACTION_USERS_SHOWN: usize = 50;
pub const THREAD_PARTICIPANTS_SHOWN: usize = 20;
/// Pinned messages per conversation.
pub const PINS_MAX: i64 = 100;
/// Mentions of individual people resolved per message.
pub const MENTIONS_MAX: usize = 100;

/// Normalises line endings and checks length and characters. The length counts the body as
/// sent (line endings and trailing spaces included), as the API document states it.
pub fn validate_body(input: &str) -> Result<String> {
    let body = body_text(input)?;
    let trimmed_end = body.trim_end();
    if trimmed_end.trim_start().is_empty() {
        return Err(Error::invalid("body", "must not be empty"));
    }
    refuse_controls(&body)?;
    Ok(trimmed_end.to_owned())
}

/// A body within the length limit (counted as sent), line endings normalised to `\n`.
fn body_text(input: &str) -> Result<String> {
    let len = input.chars().count();
    if len > BODY_MAX {
        return Err(Error::invalid("body", format!("must be at most {BODY_MAX} characters (it has {len})")));
    }
    Ok(input.replace("\r\n", "\n").replace('\r', "\n"))
}

/// Bodies hold tabs and line breaks, no other control characters.
fn refuse_controls(body: &str) -> Result<()> {
    if body.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Error::invalid("body", "must not contain control characters"));
    }
    Ok(())
}

/// Text a person has started writing in a conversation (or in one of its threads) and not
/// sent, kept on the server so that their other devices show it too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Draft {
    pub conversation_id: ConversationId,
    /// The thread it replies in; absent for the conversation's own composer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_root_id: Option<MessageId>,
    /// Empty when the draft was cleared (sent or erased).
    pub body: String,
    pub updated_at: Millis,
}

/// A draft's text: like a message body (same limit, line endings normalised, no control
/// characters) except that it may be empty, which clears the draft; blank text counts as
/// empty.
pub fn validate_draft(input: &str) -> Result<String> {
    let body = body_text(input)?;
    refuse_controls(&body)?;
    Ok(if body.trim().is_empty() { String::new() } else { body })
}

/// Idempotency keys: 1–64 printable ASCII characters.
pub fn validate_client_key(input: &str) -> Result<String> {
    if input.is_empty() || input.len() > CLIENT_KEY_MAX || !input.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid("client_key", format!("must be 1 to {CLIENT_KEY_MAX} printable ASCII characters")));
    }
    Ok(input.to_owned())
}

/// A reaction is a Unicode emoji (pictographs with their joiners, selectors, skin tones and
/// tags, a keycap or a flag) or a `:shortcode:`.
pub fn validate_emoji(input: &str) -> Result<String> {
    let e = reaction_key(input)?;
    if e.starts_with(':') {
        return Ok(e);
    }
    let keycap = e.ends_with('\u{20e3}') && e.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '#' | '*'));
    if !e.chars().all(emoji_part) || !(keycap || e.chars().any(pictograph)) {
        return Err(Error::invalid("emoji", "must be an emoji or a :shortcode:"));
    }
    Ok(e)
}

/// The looser form reactions were once checked by (non-ASCII symbols without letters, or a
/// `:shortcode:`): enough to name one already on a message, which may be taken back.
pub fn reaction_key(input: &str) -> Result<String> {
    let e = input.trim();
    let bad = || Error::invalid("emoji", "must be an emoji or a :shortcode:");
    if e.is_empty() || input.chars().count() > EMOJI_MAX || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    if let Some(code) = e.strip_prefix(':').and_then(|s| s.strip_suffix(':')) {
        let ok = !code.is_empty()
            && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'+' | b'-'));
        return if ok { Ok(e.to_owned()) } else { Err(bad()) };
    }
    // Emoji sequences may include ASCII digits, '#' and '*' (keycaps) but never letters.
    if e.chars().any(|c| c.is_ascii_alphabetic()) || e.is_ascii() {
        return Err(bad());
    }
    Ok(e.to_owned())
}

/// Whether a character may be part of an emoji sequence: a pictograph, a keycap's parts,
/// the zero-width joiner, the variation selectors, tags (subdivision flags).
fn emoji_part(c: char) -> bool {
    pictograph(c)
        || matches!(c, '0'..='9' | '#' | '*' | '\u{200d}' | '\u{20e3}' | '\u{fe0e}' | '\u{fe0f}' | '\u{e0020}'..='\u{e007f}')
}

/// The characters emoji are drawn from (symbols, arrows, dingbats, pictographs, regional
/// indicators, skin tones), leaving out the blank Braille pattern.
fn pictograph(c: char) -> bool {
    matches!(c,
        '\u{a9}' | '\u{ae}' | '\u{203c}' | '\u{2049}' | '\u{3030}' | '\u{303d}' | '\u{3297}' | '\u{3299}'
        | '\u{2100}'..='\u{27ff}' | '\u{2900}'..='\u{2bff}' | '\u{1f000}'..='\u{1faff}')
}

/// Mentions written in a body: `<@user-id>`, `<@&department-id>`, `@username`, and
/// `@channel` / `@all` / `@所有人` for everyone. Text inside `code` is ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedMentions {
    pub user_ids: BTreeSet<UserId>,
    pub usernames: BTreeSet<String>,
    pub department_ids: BTreeSet<DepartmentId>,
    pub channel: bool,
}

pub fn parse_mentions(body: &str) -> ParsedMentions {
    let mut out = ParsedMentions::default();
    for segment in outside_code(body) {
        let mut rest = segment;
        while let Some(at) = rest.find('@') {
            let before = rest[..at].chars().next_back();
            let after = &rest[at + 1..];
            // `<@…>` tokens.
            if before == Some('<') {
                match mention_code(after) {
                    Some((MentionCode::Department(id), _)) => {
                        out.department_ids.insert(id);
                    }
                    Some((MentionCode::User(id), _)) => {
                        out.user_ids.insert(id);
                    }
                    None => {}
                }
                rest = after;
                continue;
            }
            // `@word` needs a boundary before it (so e-mail addresses do not count).
            let boundary = before.is_none_or(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')));
            let ascii: String =
                after.chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')).collect();
            let ascii = ascii.trim_end_matches(['.', '-']);
            if boundary && !ascii.is_empty() {
                let lower = ascii.to_ascii_lowercase();
                if lower == "channel" || lower == "all" {
                    out.channel = true;
                } else if crate::user::normalize_username(ascii).is_ok() {
                    out.usernames.insert(ascii.to_owned());
                }
            } else if boundary && (after.starts_with("所有人") || after.starts_with("全体成员")) {
                out.channel = true;
            }
            rest = after;
        }
    }
    out
}

enum MentionCode {
    User(UserId),
    Department(DepartmentId),
}

/// The `<@id>` or `<@&id>` code whose text after `<@` starts `after`: whom it names, and its
/// length in `after` (through the `>`).
fn mention_code(after: &str) -> Option<(MentionCode, usize)> {
    let end = after.find('>')?;
    let token = &after[..end];
    let code = match token.strip_prefix('&') {
        Some(d) => MentionCode::Department(d.parse().ok()?),
        None => MentionCode::User(token.parse().ok()?),
    };
    Some((code, end + 1))
}

/// A body with each mention code (`<@id>`, `<@&id>`) replaced by a space: for the search
/// index, where the ids are no words anyone searches for and their digit runs would match
/// number queries.
pub fn without_mention_codes(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(at) = rest.find("<@") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        match mention_code(after) {
            Some((_, len)) => {
                out.push(' ');
                rest = &after[len..];
            }
            None => {
                out.push_str("<@");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The parts of Markdown text outside inline code spans and fenced code blocks.
fn outside_code(body: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = body;
    loop {
        let Some(start) = rest.find('`') else {
            parts.push(rest);
            break;
        };
        parts.push(&rest[..start]);
        let ticks = rest[start..].chars().take_while(|c| *c == '`').count();
        let fence = "`".repeat(ticks);
        let after = &rest[start + ticks..];
        match after.find(&fence) {
            Some(end) => rest = &after[end + ticks..],
            None => {
                // An unclosed span is just text.
                parts.push(after);
                break;
            }
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert_eq!(validate_body("hi\r\nthere  \n").unwrap(), "hi\nthere");
        assert!(validate_body(" \n\t ").is_err());
        assert!(validate_body("a\u{0}").is_err());
        assert!(validate_body(&"长".repeat(BODY_MAX)).is_ok());
        let e = validate_body(&"长".repeat(BODY_MAX + 1)).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("body"));
        assert!(validate_body("  indented code\n\tkept").unwrap().starts_with("  indented"));
    }

    #[test]
    fn emoji() {
        let ok = [
            "👍",
            "👍🏽",
            "👨‍👩‍👧",
            ":thumbsup:",
            ":+1:",
            "❤️",
            "❤︎",
            "1️⃣",
            "#️⃣",
            "✔️",
            "☕",
            "⚡",
            "〰️",
            "‼️",
            "⁉️",
            "™️",
            "ℹ️",
            "Ⓜ️",
            "⌛",
            "⏰",
            "↩️",
            "🫡",
            "🇨🇳",
            "©",
            "®",
            "🏴\u{e0067}\u{e0062}\u{e0073}\u{e0063}\u{e0074}\u{e007f}",
            "✅",
            "🎉",
        ];
        for e in ok {
            assert!(validate_emoji(e).is_ok(), "{e}");
        }
        for bad in [
            "",
            "abc",
            ":Bad:",
            "👍 👍",
            "::",
            &"👍".repeat(33),
            "a👍",
            "中",
            "é",
            "\u{200b}",
            "\u{202e}",
            "\u{e007f}",
            "\u{2800}",
            "\u{20e3}",
            "1",
            "好",
        ] {
            assert!(validate_emoji(bad).is_err(), "{bad:?}");
        }
        // What the looser check of old accepted can still be named, to be taken back.
        assert_eq!(reaction_key(" 好 ").unwrap(), "好");
        assert!(reaction_key("abc").is_err());
    }

    #[test]
    fn client_keys() {
        assert!(validate_client_key("0193f2c1-aaaa").is_ok());
        assert!(validate_client_key("").is_err());
        assert!(validate_client_key("has space").is_err());
        assert!(validate_client_key(&"k".repeat(65)).is_err());
    }

    #[test]
    fn mentions_by_token_username_and_everyone() {
        let u = UserId::new();
        let d = DepartmentId::new();
        let m = parse_mentions(&format!("hi <@{u}> and <@&{d}>, @lilei @HanMeimei. cc @所有人"));
        assert_eq!(m.user_ids.into_iter().collect::<Vec<_>>(), vec![u]);
        assert_eq!(m.department_ids.into_iter().collect::<Vec<_>>(), vec![d]);
        assert_eq!(m.usernames.into_iter().collect::<Vec<_>>(), vec!["HanMeimei".to_owned(), "lilei".to_owned()]);
        assert!(m.channel);
        assert!(parse_mentions("@channel please").channel);
        assert!(parse_mentions("@ALL").channel);
    }

    #[test]
    fn mention_codes_are_left_out_for_the_index() {
        let (u, d) = (UserId::new(), DepartmentId::new());
        assert_eq!(without_mention_codes(&format!("<@{u}> 请看 <@&{d}>，谢谢")), "  请看  ，谢谢");
        assert_eq!(without_mention_codes("a <@ b <@x> <@&"), "a <@ b <@x> <@&");
        assert_eq!(without_mention_codes("价格<@"), "价格<@");
    }

    #[test]
    fn mentions_skip_emails_code_and_garbage() {
        let m = parse_mentions("mail li@acme.cn, `@lilei` and ```\n@all\n``` but <@not-a-uuid> @");
        assert_eq!(m, ParsedMentions::default());
        let m = parse_mentions("unclosed `code @lilei");
        assert!(m.usernames.contains("lilei"));
        assert!(parse_mentions("(@wang)").usernames.contains("wang"));
        assert!(parse_mentions("中文@zhang").usernames.contains("zhang"), "CJK text directly before is a boundary");
        assert!(parse_mentions("@lilei你好").usernames.contains("lilei"), "CJK text directly after ends the name");
    }
}
