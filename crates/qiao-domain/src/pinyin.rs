//! Pinyin for names, so the directory finds 张伟 by `zhangwei` or by its initials `zw` (how
//! people look each other up in Chinese workplaces, typing without switching input method).
//! One reading per character: Unihan's usual Mandarin reading (`pinyin_table.rs`), except
//! for a name's first character when it is a surname read otherwise (曾 as zeng, 单 as shan).

use std::collections::HashMap;
use std::sync::LazyLock;

#[path = "pinyin_table.rs"]
mod table;

static READINGS: LazyLock<HashMap<char, &'static str>> = LazyLock::new(|| {
    let mut map = HashMap::with_capacity(21_000);
    for line in table::PINYIN.lines() {
        if let Some((syllable, chars)) = line.split_once(' ') {
            for c in chars.chars() {
                map.insert(c, syllable);
            }
        }
    }
    map
});

/// Surnames whose reading differs from the character's usual one.
const SURNAMES: &[(char, &str)] = &[
    ('曾', "zeng"),
    ('单', "shan"),
    ('解', "xie"),
    ('仇', "qiu"),
    ('朴', "piao"),
    ('区', "ou"),
    ('查', "zha"),
    ('盖', "ge"),
    ('覃', "qin"),
    ('乐', "yue"),
    ('缪', "miao"),
    ('翟', "zhai"),
    ('种', "chong"),
    ('秘', "bi"),
    ('藏', "zang"),
    ('卜', "bu"),
    ('召', "shao"),
    ('员', "yun"),
    ('繁', "po"),
];

/// A name's pinyin, one syllable per Chinese character of `name` (`张伟` or `張偉` → `zhang`,
/// `wei`), its first character read as a surname; `None` when it has none.
pub fn of_name(name: &str) -> Option<Vec<&'static str>> {
    readings(name, true)
}

/// A text's pinyin, one syllable per Chinese character (`项目组` → `xiang`, `mu`, `zu`);
/// `None` when it has none.
pub fn of_text(text: &str) -> Option<Vec<&'static str>> {
    readings(text, false)
}

fn readings(text: &str, surname_first: bool) -> Option<Vec<&'static str>> {
    let mut syllables = Vec::new();
    for c in text.chars().map(crate::fold::fold_char) {
        let surname = (surname_first && syllables.is_empty())
            .then(|| SURNAMES.iter().find(|(s, _)| *s == c).map(|(_, r)| *r))
            .flatten();
        syllables.extend(surname.or_else(|| READINGS.get(&c).copied()));
    }
    (!syllables.is_empty()).then_some(syllables)
}

/// Appends the lines a search key holds for these syllables: run together, with spaces,
/// and as initials (`zhangwei`, `zhang wei`, `zw`), so any of them finds the text.
pub fn push_key_lines(key: &mut String, syllables: &[&str]) {
    key.push_str(&syllables.concat());
    key.push('\n');
    key.push_str(&syllables.join(" "));
    key.push('\n');
    key.extend(syllables.iter().filter_map(|s| s.chars().next()));
    key.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_pinyin_and_initials() {
        let p = |s: &str| of_name(s).map(|v| v.join(" "));
        assert_eq!(p("张伟").as_deref(), Some("zhang wei"));
        assert_eq!(p("張偉").as_deref(), Some("zhang wei"));
        assert_eq!(p("欧阳娜娜").as_deref(), Some("ou yang na na"));
        assert_eq!(p("吕布").as_deref(), Some("lv bu"));
        assert_eq!(p("曾国藩").as_deref(), Some("zeng guo fan"), "a surname's own reading");
        assert_eq!(p("Li Lei 李雷").as_deref(), Some("li lei"), "Latin letters are left out");
        assert_eq!(p("Alice"), None);
        assert!(READINGS.len() > 20_000);
        for (c, r) in SURNAMES {
            assert_ne!(READINGS.get(c), Some(r), "{c}: the usual reading already");
        }
    }
}
