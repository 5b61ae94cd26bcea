//! Words written differently in Taiwan and mainland China (軟體 and 软件, 資訊 and 信息): the
//! index adds the mainland word to a text holding the Taiwanese one, and a query's Taiwanese
//! word is searched as the mainland one, so either finds the other. Only words mainland text
//! does not use in another sense are listed (`scripts/gen-regional-phrases`), as the text has
//! been folded to simplified characters.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

#[path = "regional_table.rs"]
mod table;

/// First character → (Taiwanese word, mainland word), longest first.
fn words() -> &'static HashMap<char, Vec<(&'static str, &'static str)>> {
    static WORDS: OnceLock<HashMap<char, Vec<(&'static str, &'static str)>>> = OnceLock::new();
    WORDS.get_or_init(|| {
        let mut by_first: HashMap<char, Vec<(&str, &str)>> = HashMap::new();
        for line in table::TW_TO_MAINLAND.lines() {
            if let Some((tw, mainland)) = line.split_once('\t')
                && let Some(first) = tw.chars().next()
            {
                by_first.entry(first).or_default().push((tw, mainland));
            }
        }
        for list in by_first.values_mut() {
            list.sort_by_key(|(tw, _)| std::cmp::Reverse(tw.len()));
        }
        by_first
    })
}

/// Each Taiwanese word of `text` (folded) and where it starts, longest match first, left to
/// right.
fn matches(text: &str) -> impl Iterator<Item = (usize, &'static str, &'static str)> + '_ {
    let words = words();
    let mut at = 0;
    std::iter::from_fn(move || {
        while let Some(c) = text[at..].chars().next() {
            let start = at;
            if let Some((tw, mainland)) =
                words.get(&c).and_then(|l| l.iter().find(|(tw, _)| text[start..].starts_with(tw)))
            {
                at += tw.len();
                return Some((start, *tw, *mainland));
            }
            at += c.len_utf8();
        }
        None
    })
}

/// The mainland words of the Taiwanese ones in `text`, to index with it (`None` when there
/// are none).
pub fn mainland_words(text: &str) -> Option<String> {
    let found: Vec<&str> = matches(text).map(|(_, _, mainland)| mainland).collect();
    (!found.is_empty()).then(|| found.join(" "))
}

/// A query word with its Taiwanese words written as the mainland ones.
pub fn as_mainland(text: &str) -> Cow<'_, str> {
    let mut out: Option<String> = None;
    let mut copied = 0;
    for (start, tw, mainland) in matches(text) {
        let s = out.get_or_insert_with(String::new);
        s.push_str(&text[copied..start]);
        s.push_str(mainland);
        copied = start + tw.len();
    }
    match out {
        Some(mut s) => {
            s.push_str(&text[copied..]);
            Cow::Owned(s)
        }
        None => Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taiwanese_words_meet_the_mainland_ones() {
        assert_eq!(mainland_words("台湾的软体工程师谈资讯安全").as_deref(), Some("软件 信息"));
        assert_eq!(mainland_words("软件工程师"), None);
        assert_eq!(as_mainland("软体"), "软件");
        assert_eq!(as_mainland("网路连不上"), "网络连不上");
        assert!(matches!(as_mainland("会议"), Cow::Borrowed("会议")));
        // Words mainland text uses in another sense are not listed.
        assert_eq!(mainland_words("程序文件资料"), None);
    }
}
