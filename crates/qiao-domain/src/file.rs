//! Files shared in conversations: what members see of them, and the rules for names.

use serde::{Deserialize, Serialize};

use crate::{ConversationId, Error, FileId, MessageId, Millis, Result, UserId};

/// Files a message may carry.
pub const FILES_PER_MESSAGE_MAX: usize = 10;
/// Longest file name kept (characters).
pub const FILE_NAME_MAX: usize = 200;

/// What kind of file, from its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Image,
    Audio,
    Video,
    Document,
    Other,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Image => "image",
            FileKind::Audio => "audio",
            FileKind::Video => "video",
            FileKind::Document => "document",
            FileKind::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "image" => FileKind::Image,
            "audio" => FileKind::Audio,
            "video" => FileKind::Video,
            "document" => FileKind::Document,
            "other" => FileKind::Other,
            _ => return None,
        })
    }
}

/// A file as the members of its conversation see it. The bytes are at
/// `/api/v1/files/{id}/content`; images have `/api/v1/files/{id}/thumbnail`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileInfo {
    pub id: FileId,
    pub conversation_id: ConversationId,
    pub uploader_id: UserId,
    /// The message carrying it, once sent.
    pub message_id: Option<MessageId>,
    pub name: String,
    /// The type recognised from the bytes (never the one the uploader claimed).
    pub mime: String,
    pub kind: FileKind,
    pub size: i64,
    /// Images: pixel size.
    pub width: Option<i32>,
    pub height: Option<i32>,
    /// Voice messages and other recordings: length as the uploader's recorder measured it.
    pub duration_ms: Option<i64>,
    /// Recorded as a voice message.
    pub voice: bool,
    /// A thumbnail is available.
    pub thumbnail: bool,
    pub created_at: Millis,
}

/// Longest file name an upload may give (it is shortened to [`FILE_NAME_MAX`]).
pub const FILE_NAME_INPUT_MAX: usize = 1000;

/// Cleans an uploaded file's name: no path, no control characters, at most
/// [`FILE_NAME_MAX`] characters (keeping the extension); empty becomes "file".
pub fn clean_file_name(raw: &str) -> Result<String> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|&c| {
            !c.is_control() && !matches!(c, '"' | '\u{200b}' | '\u{feff}') && !crate::text::is_direction_control(c)
        })
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if raw.chars().count() > FILE_NAME_INPUT_MAX {
        return Err(Error::invalid("name", format!("must be at most {FILE_NAME_INPUT_MAX} characters")));
    }
    let name = if cleaned.is_empty() { "file".to_owned() } else { cleaned.to_owned() };
    if name.chars().count() <= FILE_NAME_MAX {
        return Ok(name);
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() && e.chars().count() <= 10 => (s, Some(e)),
        _ => (name.as_str(), None),
    };
    let keep = FILE_NAME_MAX - ext.map_or(0, |e| e.chars().count() + 1);
    let mut out: String = stem.chars().take(keep).collect();
    if let Some(e) = ext {
        out.push('.');
        out.push_str(e);
    }
    Ok(out)
}

/// Whether a file of this type may be shown inline by browsers (everything else is served
/// as a download).
pub fn previewable_inline(mime: &str) -> bool {
    matches!(mime, "image/png" | "image/jpeg" | "image/gif" | "image/webp")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_cleaned() {
        assert_eq!(clean_file_name("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(clean_file_name("C:\\Users\\me\\报告.pdf").unwrap(), "报告.pdf");
        assert_eq!(clean_file_name(" .hidden ").unwrap(), "hidden");
        assert_eq!(clean_file_name("a\u{0}b\u{202e}c\".txt").unwrap(), "abc.txt");
        assert_eq!(clean_file_name("").unwrap(), "file");
        let long = format!("{}.docx", "长".repeat(300));
        let cut = clean_file_name(&long).unwrap();
        assert_eq!(cut.chars().count(), FILE_NAME_MAX);
        assert!(cut.ends_with(".docx"));
        assert!(clean_file_name(&"x".repeat(1001)).is_err());
        let just_over = clean_file_name(&format!("{}.docx", "x".repeat(196))).unwrap();
        assert_eq!((just_over.chars().count(), just_over.ends_with("x.docx")), (200, true), "{just_over}");
    }

    #[test]
    fn only_safe_images_are_inline() {
        assert!(previewable_inline("image/png"));
        assert!(!previewable_inline("image/svg+xml"));
        assert!(!previewable_inline("text/html"));
        assert_eq!(FileKind::parse("audio"), Some(FileKind::Audio));
    }
}
