//! Validation of the small text fields every entity has (names, titles, handles).

use std::borrow::Cow;

use crate::{Error, Result};

/// Trims `input` and checks it is one line of `min..=max` characters without control
/// characters (anywhere in the input, a trailing line break too). Returns the trimmed text.
/// The maximum counts the input as sent, spaces around it included (as the API document's
/// `maxLength` does); the minimum counts what trimming leaves, so a blank name is empty.
pub fn single_line(field: impl Into<Cow<'static, str>>, input: &str, min: usize, max: usize) -> Result<String> {
    let field = field.into();
    if input.chars().count() > max {
        return Err(Error::invalid(field, format!("must be at most {max} characters")));
    }
    let text = input.trim();
    if text.chars().count() < min {
        return Err(if min == 1 {
            Error::invalid(field, "must not be empty")
        } else {
            Error::invalid(field, format!("must be at least {min} characters"))
        });
    }
    if input.chars().any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')) {
        return Err(Error::invalid(field, "must be a single line without control characters"));
    }
    // Dropped rather than refused: names pasted from other tools often carry them, and a name
    // stored with one must stay editable.
    let text: String = text.chars().filter(|&c| !is_direction_control(c)).collect();
    let text = text.trim();
    if min >= 1 && !text.chars().any(|c| !c.is_whitespace() && !is_invisible(c)) {
        return Err(Error::invalid(field, "must not be empty (invisible characters alone are not a name)"));
    }
    Ok(text.to_owned())
}

/// Text-direction controls (embeddings, overrides, isolates): they reorder what follows, so
/// a name holding one can pass for another ("invoice\u{202e}fdp.exe" shows as "invoiceexe.pdf").
pub fn is_direction_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Characters that show nothing by themselves: the soft hyphen, zero-width spaces, joiners
/// and marks, invisible operators, the byte order mark. (Not to be dropped from text: joiners
/// shape Persian and Indic words and join emoji.)
pub fn is_invisible(c: char) -> bool {
    matches!(c, '\u{ad}' | '\u{61c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

/// Escapes `%`, `_` and `\` so user input matches literally inside a SQL `LIKE` pattern
/// written with `ESCAPE '\'`.
pub fn escape_like(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The normalised form used for case-insensitive matching (Unicode lower case).
pub fn fold(input: &str) -> String {
    input.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_trims_and_counts_characters_not_bytes() {
        assert_eq!(single_line("name", "  研发部  ", 1, 7).unwrap(), "研发部");
        assert!(single_line("name", "研发部门", 1, 3).is_err());
        assert!(single_line("name", " 研发部 ", 1, 3).is_err(), "spaces count towards the maximum");
        assert!(single_line("name", "   ", 1, 3).is_err());
        assert!(single_line("name", "a\nb", 1, 10).is_err());
        assert!(single_line("name", "a\u{0}b", 1, 10).is_err());
        assert!(single_line("name", "ab\n", 1, 10).is_err());
        assert!(single_line("name", "\u{200b}", 1, 10).is_err(), "invisible alone");
        assert!(single_line("name", " \u{feff} \u{200d}", 1, 10).is_err());
        assert_eq!(single_line("name", "a\u{202e}b", 1, 10).unwrap(), "ab", "direction controls are dropped");
        assert_eq!(single_line("name", "\u{202a}李伟 \u{202c}", 0, 10).unwrap(), "李伟");
        assert!(single_line("name", "\u{2067}", 1, 10).is_err(), "nothing left to see");
        assert_eq!(single_line("name", "👨\u{200d}💻 李", 1, 10).unwrap(), "👨\u{200d}💻 李");
        assert_eq!(single_line("topic", "\u{200b}", 0, 10).unwrap(), "\u{200b}", "no minimum, nothing to see");
        let e = single_line("title", "x", 2, 10).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("title"));
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
        assert_eq!(escape_like("张三"), "张三");
    }
}
