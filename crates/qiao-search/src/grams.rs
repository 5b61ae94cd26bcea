//! Character n-grams for Chinese, Japanese and Korean text, so that words the segmenter does
//! not know (names, new terms) and words inside longer ones (上海 in 上海分公司) are found.
//! Unigrams serve one-character queries; bigrams serve everything longer, as phrases of
//! consecutive bigrams. Other text is left to the word field.

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// Whether a character is written without spaces between words (Han, kana, Hangul).
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30ff      // Hiragana, Katakana
        | 0x3400..=0x4dbf    // CJK Extension A
        | 0x4e00..=0x9fff    // CJK Unified Ideographs
        | 0xac00..=0xd7af    // Hangul syllables
        | 0xf900..=0xfaff    // CJK Compatibility Ideographs
        | 0x20000..=0x2ee5f  // Extensions B–F, I
        | 0x30000..=0x323af) // Extensions G, H
}

/// Emits the CJK characters of a text as n-grams (n = 1 or 2) over each unbroken run.
#[derive(Clone, Debug)]
pub struct CjkGrams {
    pub n: usize,
}

pub struct VecTokenStream {
    tokens: Vec<Token>,
    next: usize,
}

impl TokenStream for VecTokenStream {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }
    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }
    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

/// The CJK runs of a text: (byte offset, characters). Invisible characters (a zero-width
/// space pasted in, a soft hyphen) do not end a run: 会\u{200b}议 holds 会议.
pub fn cjk_runs(text: &str) -> Vec<(usize, Vec<(usize, char)>)> {
    let mut runs = Vec::new();
    let mut cur: Vec<(usize, char)> = Vec::new();
    for (i, c) in text.char_indices() {
        if is_cjk(c) {
            cur.push((i, c));
        } else if qiao_domain::text::is_invisible(c) {
            continue;
        } else if !cur.is_empty() {
            runs.push((cur[0].0, std::mem::take(&mut cur)));
        }
    }
    if !cur.is_empty() {
        runs.push((cur[0].0, cur));
    }
    runs
}

/// The n-grams of a text, as (text, byte range) in order.
pub fn grams(text: &str, n: usize) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    for (_, run) in cjk_runs(text) {
        if run.len() < n {
            continue;
        }
        for w in run.windows(n) {
            let s: String = w.iter().map(|(_, c)| *c).collect();
            let (start, last) = (w[0].0, w[n - 1]);
            out.push((s, start, last.0 + last.1.len_utf8()));
        }
    }
    out
}

/// Jieba's words without the spaces and punctuation it also emits, numbered consecutively
/// (so "project deadline" is a two-word phrase). For the index (`split_mixed`), some words
/// are also recorded in other forms, at the same position, so that phrases keep working:
/// a word of ASCII letters and digits as its letter and digit runs (`iphone` finds
/// iPhone15, and `q3` stays one word for phrases), other spellings of a word ([`joined`]:
/// `email` finds e-mail, `wifi` Wi-Fi, `nodejs` Node.js, and a date written with slashes,
/// hyphens or dots meets the others), a number written in groups of three
/// without its commas (`1299` finds 1,299) and a percentage without its sign (`92` finds
/// 92%), and a version number without its letters and as its prefixes (`2.3` finds v2.3.1).
/// Queries keep words whole.
#[derive(Clone)]
pub struct Words {
    pub jieba: tantivy_jieba::JiebaTokenizer,
    pub split_mixed: bool,
}

/// The letter and digit runs of an ASCII word that has both (`iphone15` → iphone, 15).
pub(crate) fn mixed_runs(word: &str) -> Option<Vec<(usize, usize)>> {
    let b = word.as_bytes();
    let mixed = b.iter().all(u8::is_ascii_alphanumeric)
        && b.iter().any(u8::is_ascii_digit)
        && b.iter().any(u8::is_ascii_alphabetic);
    if !mixed {
        return None;
    }
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=b.len() {
        if i == b.len() || b[i].is_ascii_digit() != b[start].is_ascii_digit() {
            runs.push((start, i));
            start = i;
        }
    }
    Some(runs)
}

/// The runs of ASCII letters and digits of a dictionary word that mixes them with CJK
/// characters (QQ号, IP地址, U盘): the index also holds them as words, so qq finds QQ号.
fn latin_in_cjk(word: &str) -> Vec<(usize, usize)> {
    if !word.chars().any(is_cjk) {
        return Vec::new();
    }
    ascii_runs(word).collect()
}

/// The byte ranges of a text's runs of ASCII letters and digits.
pub(crate) fn ascii_runs(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let b = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < b.len() && !b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        (i > start).then_some((start, i))
    })
}

/// The runs of ASCII letters and digits (two or more characters) of a word that joins them
/// with other characters (`PROJ-1024` → proj, 1024; `2024-05-01` → 2024, 05, 01): the index
/// also holds them as words, so a ticket's number or a date's year finds it.
fn separated_parts(word: &str) -> Vec<(usize, usize)> {
    let b = word.as_bytes();
    if !word.is_ascii() || b.iter().all(u8::is_ascii_alphanumeric) {
        return Vec::new();
    }
    let mut runs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        if i - start >= 2 {
            runs.push((start, i));
        }
        i += 1;
    }
    if runs.len() < 2 { Vec::new() } else { runs }
}

/// The shorter runs of parts of a word of three to six ASCII parts joined by hyphens or by
/// underscores (`HT-2024-001` → `HT-2024`, `2024-001`; `snake_case_name` → `snake_case`,
/// `case_name`), as byte ranges: the index holds them as words too, so a code's tail (or a
/// date's month and day, `05-01`) finds it as typed.
fn hyphen_runs(word: &str) -> Vec<(usize, usize)> {
    let Some(sep) = ['-', '_'].into_iter().find(|c| word.contains(*c)) else { return Vec::new() };
    let parts: Vec<(usize, usize)> = word
        .split(sep)
        .scan(0, |at, p| {
            let start = *at;
            *at += p.len() + 1;
            Some((start, start + p.len()))
        })
        .collect();
    let simple = parts.iter().all(|&(s, e)| e > s && word.as_bytes()[s..e].iter().all(u8::is_ascii_alphanumeric));
    if !(3..=6).contains(&parts.len()) || !simple {
        return Vec::new();
    }
    let mut out = Vec::new();
    for len in 2..parts.len() {
        for w in parts.windows(len) {
            out.push((w[0].0, w[len - 1].1));
        }
    }
    out
}

/// Another form of a word that people write in several ways: a date as `yyyymmdd` (from
/// `2024/5/1`, `2024-05-01` or `2024.5.1`: they meet), a word of ASCII letters and digits
/// joined by hyphens run together (`e-mail` → `email`), one joined by dots between letters
/// run together (`Node.js` → `nodejs`; not `1.5GB` or `v1.2`: numbers keep their dots), or a
/// number written in groups of three without its commas (`1,299` → `1299`); `None` for
/// anything else.
pub fn joined(word: &str) -> Option<String> {
    if let Some(date) = date_form(word) {
        return Some(date);
    }
    let hyphenated =
        word.contains('-') && word.split('-').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    let dotted = word.contains('.') && {
        let parts: Vec<&str> = word.split('.').collect();
        parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
            && parts.windows(2).all(|w| {
                w[0].bytes().last().is_some_and(|b| b.is_ascii_alphabetic())
                    && w[1].bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            })
    };
    let grouped = word.contains(',') && {
        let mut groups = word.split(',');
        let first = groups.next().unwrap_or("");
        (1..=3).contains(&first.len())
            && first.bytes().all(|b| b.is_ascii_digit())
            && groups.all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()))
    };
    (hyphenated || dotted || grouped).then(|| word.replace(['-', '.', ','], ""))
}

/// A date written year first with one kind of separator (`2024/5/1`, `2024-05-01`,
/// `2024.5.1`) as `yyyymmdd`.
fn date_form(word: &str) -> Option<String> {
    let sep = ['/', '-', '.'].into_iter().find(|c| word.contains(*c))?;
    let parts: Vec<&str> = word.split(sep).collect();
    let [y, m, d] = parts.as_slice() else { return None };
    let number = |p: &str, len: std::ops::RangeInclusive<usize>| {
        (len.contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())).then(|| p.parse::<u32>().ok()).flatten()
    };
    let (y, m, d) = (number(y, 4..=4)?, number(m, 1..=2)?, number(d, 1..=2)?);
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then(|| format!("{y:04}{m:02}{d:02}"))
}

/// The number of a version written with letters before it (`v2.3` → `2.3`, `V10.4` →
/// `10.4`); `None` for anything else.
pub(crate) fn version_number(word: &str) -> Option<&str> {
    let number = without_letters(word);
    (number.len() < word.len() && dotted_digits(number)).then_some(number)
}

/// A word without the letters it starts with (`v2.3.1` → `2.3.1`).
fn without_letters(word: &str) -> &str {
    word.trim_start_matches(|c: char| c.is_ascii_alphabetic())
}

/// Two or more runs of digits joined by dots (`2.3`, `10.4.2`).
fn dotted_digits(number: &str) -> bool {
    number.contains('.') && number.split('.').all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
}

/// A version number's other forms: without its letters (`v2.3.1` → `2.3.1`) and its
/// shorter prefixes (`2.3`), so `2.3` finds v2.3.1. Empty for anything else.
fn version_forms(word: &str) -> Vec<String> {
    let number = without_letters(word);
    if !dotted_digits(number) {
        return Vec::new();
    }
    let components: Vec<&str> = number.split('.').collect();
    let mut forms: Vec<String> = (2..components.len()).map(|n| components[..n].join(".")).collect();
    if number.len() < word.len() {
        forms.push(number.to_owned());
    }
    forms
}

/// The numbers written in groups of three in `text` (`1,299`, `12,000,000`) and the dates
/// written with slashes (`2024/05/01`), as byte ranges: jieba cuts them apart.
fn digit_groups(text: &str) -> Vec<(usize, usize)> {
    let mut out = comma_groups(text);
    out.extend(slashed_numbers(text));
    out.sort_unstable();
    out
}

/// Dates written with slashes (`2024/05/01`, `2024/5/1`), not inside a longer word or path:
/// jieba cuts them apart (fractions and other slashed numbers are left alone).
fn slashed_numbers(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let digits_from = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let boundary = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'/');
        if !b[i].is_ascii_digit() || !boundary {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = digits_from(i);
        let mut parts = 1;
        while end + 1 < b.len() && b[end] == b'/' && b[end + 1].is_ascii_digit() {
            end = digits_from(end + 1);
            parts += 1;
        }
        let after_ok = end == b.len() || !(b[end].is_ascii_alphanumeric() || b[end] == b'/');
        if parts == 3 && after_ok && date_form(&text[start..end]).is_some() {
            out.push((start, end));
        }
        i = end.max(i + 1);
    }
    out
}

fn comma_groups(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b',')) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let mut end = i;
        if end - start <= 3 {
            while end + 3 < b.len() && b[end] == b',' && b[end + 1..end + 4].iter().all(u8::is_ascii_digit) {
                end += 4;
            }
        }
        let after_ok = end == b.len() || !b[end].is_ascii_alphanumeric();
        if end > i && after_ok {
            out.push((start, end));
        }
        i = end.max(i);
    }
    out
}

/// `text` with each short run of ASCII letters and digits (at most 4) that touches a CJK
/// character in upper case (`None` when nothing changes). Offsets are unchanged.
pub(crate) fn dictionary_case(text: &str) -> Option<String> {
    let touches_cjk = |at: usize, before: bool| {
        if before { text[..at].chars().next_back() } else { text[at..].chars().next() }.is_some_and(is_cjk)
    };
    let mut out: Option<String> = None;
    for (start, i) in ascii_runs(text) {
        let run = &text[start..i];
        if i - start <= 4
            && run.bytes().any(|c| c.is_ascii_lowercase())
            && (touches_cjk(start, true) || touches_cjk(i, false))
        {
            out.get_or_insert_with(|| text.to_owned())[start..i].make_ascii_uppercase();
        }
    }
    out
}

/// Tokens after a word that may be its shorter words (jieba's search mode gives at most a
/// handful per word).
const SUBWORDS_MAX: usize = 8;

impl Tokenizer for Words {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        let groups = if self.split_mixed { digit_groups(text) } else { Vec::new() };
        // Cut as jieba's dictionary spells its mixed words (U盘, B座, IP地址), whatever the case
        // typed: the index and queries agree (the words are lower-cased after).
        let upper = dictionary_case(text);
        let mut inner = self.jieba.token_stream(upper.as_deref().unwrap_or(text));
        let mut cut: Vec<Token> = Vec::new();
        while inner.advance() {
            if inner.token().text.chars().any(char::is_alphanumeric) {
                cut.push(inner.token().clone());
            }
        }
        let mut tokens: Vec<Token> = Vec::new();
        let mut position = 0;
        for (i, t) in cut.iter().enumerate() {
            // jieba's search mode gives a long word's shorter words just before it (视频, 会议,
            // 视频会议): they take the word's position, so that what follows the word follows
            // each of them too (会议PPT is a phrase of 视频会议PPT).
            let inside = cut[i + 1..].iter().take(SUBWORDS_MAX).any(|w| {
                w.offset_from <= t.offset_from
                    && t.offset_to <= w.offset_to
                    && w.offset_to - w.offset_from > t.text.len()
            });
            let mut word = t.clone();
            word.position = position;
            tokens.push(word);
            if self.split_mixed {
                let other = |from: usize, to: usize, text: String| Token {
                    offset_from: from,
                    offset_to: to,
                    position,
                    text,
                    position_length: 1,
                };
                let runs = mixed_runs(&t.text).unwrap_or_default();
                // Two runs in a row as well, in a word of three or more (2024Q3 → q3,
                // iPhone15Pro → iphone15 and 15pro): what people type of such codes.
                let pairs: Vec<(usize, usize)> =
                    if runs.len() >= 3 { runs.windows(2).map(|w| (w[0].0, w[1].1)).collect() } else { Vec::new() };
                let parts = runs.into_iter().chain(pairs).chain(latin_in_cjk(&t.text)).chain(separated_parts(&t.text));
                for (s, e) in parts {
                    tokens.push(other(t.offset_from + s, t.offset_from + e, t.text[s..e].to_owned()));
                }
                if let Some(j) = joined(&t.text) {
                    tokens.push(other(t.offset_from, t.offset_to, j));
                }
                for (s, e) in hyphen_runs(&t.text) {
                    tokens.push(other(t.offset_from + s, t.offset_from + e, t.text[s..e].to_owned()));
                }
                for v in version_forms(&t.text) {
                    tokens.push(other(t.offset_from, t.offset_to, v));
                }
                if let Some(n) = t.text.strip_suffix('%').filter(|n| !n.is_empty()) {
                    tokens.push(other(t.offset_from, t.offset_to - 1, n.to_owned()));
                }
                if let Some(&(s, e)) = groups.iter().find(|(s, _)| *s == t.offset_from)
                    && let Some(j) = joined(&text[s..e])
                {
                    tokens.push(other(s, e, j));
                }
            }
            if !inside {
                position += 1;
            }
        }
        VecTokenStream { tokens, next: 0 }
    }
}

impl Tokenizer for CjkGrams {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        let mut tokens = Vec::new();
        let mut position = 0;
        for (_, run) in cjk_runs(text) {
            if run.len() >= self.n {
                for w in run.windows(self.n) {
                    let (start, last) = (w[0].0, w[self.n - 1]);
                    tokens.push(Token {
                        offset_from: start,
                        offset_to: last.0 + last.1.len_utf8(),
                        position,
                        text: w.iter().map(|(_, c)| *c).collect(),
                        position_length: 1,
                    });
                    position += 1;
                }
            }
            // Keep runs apart, so a phrase never spans two of them.
            position += 1;
        }
        VecTokenStream { tokens, next: 0 }
    }
}

/// Longest run of ASCII letters and digits an edge gram is made from, in bytes.
pub const EDGE_RUN_MAX: usize = 32;

/// Where a run of ASCII letters and digits meets a CJK character, as one lower-cased gram of
/// the two: `5月1日前` gives 5月, 月1 and 1日. The segmenter may cut such text in ways a query
/// is not cut (月底 is one word in 3月底, so the word 月 is not there): these grams let a term
/// that mixes digits or letters with CJK characters be matched by what it is made of. A
/// run that mixes letters and digits also gives each of its ends from a change between them
/// (2024Q3营收: 2024q3营, q3营 and 3营), so a query typing only its end still matches.
pub fn edges(text: &str) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    for (start, i) in ascii_runs(text) {
        let run = &text[start..i];
        if run.len() > EDGE_RUN_MAX {
            continue;
        }
        let changes: Vec<usize> = (1..run.len())
            .filter(|&k| run.as_bytes()[k].is_ascii_digit() != run.as_bytes()[k - 1].is_ascii_digit())
            .collect();
        if let Some(before) = text[..start].chars().next_back().filter(|&c| is_cjk(c)) {
            let from = start - before.len_utf8();
            for end in changes.iter().copied().chain([run.len()]) {
                out.push((format!("{before}{}", run[..end].to_ascii_lowercase()), from, start + end));
            }
        }
        if let Some(after) = text[i..].chars().next().filter(|&c| is_cjk(c)) {
            let to = i + after.len_utf8();
            for begin in [0].into_iter().chain(changes.iter().copied()) {
                out.push((format!("{}{after}", run[begin..].to_ascii_lowercase()), start + begin, to));
            }
        }
    }
    out
}

/// [`edges`] as a tokenizer (no positions: the grams are matched as terms).
#[derive(Clone, Debug)]
pub struct EdgeGrams;

impl Tokenizer for EdgeGrams {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        let tokens = edges(text)
            .into_iter()
            .enumerate()
            .map(|(position, (text, offset_from, offset_to))| Token {
                offset_from,
                offset_to,
                position,
                text,
                position_length: 1,
            })
            .collect();
        VecTokenStream { tokens, next: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_words_joined_by_other_characters() {
        let texts = |w: &str| separated_parts(w).into_iter().map(|(s, e)| w[s..e].to_owned()).collect::<Vec<_>>();
        assert_eq!(texts("proj-1024"), ["proj", "1024"]);
        assert_eq!(texts("2024-05-01"), ["2024", "05", "01"]);
        assert_eq!(texts("v2.3.10"), ["v2", "10"]);
        assert!(texts("iphone15").is_empty() && texts("e-mail").is_empty() && texts("x").is_empty());
    }

    #[test]
    fn edges_where_letters_and_digits_meet_cjk() {
        let texts = |s: &str| edges(s).into_iter().map(|(t, _, _)| t).collect::<Vec<_>>();
        assert_eq!(texts("5月1日前完成"), ["5月", "月1", "1日"]);
        assert_eq!(texts("3月底交付 and plain English"), ["3月"]);
        assert_eq!(texts("2024Q3营收"), ["2024q3营", "q3营", "3营"]);
        assert_eq!(texts("用K8s部署"), ["用k", "用k8", "用k8s", "k8s部", "8s部", "s部"]);
        assert!(texts("纯中文 and words 123").is_empty());
        let long = format!("中{}文", "a".repeat(EDGE_RUN_MAX + 1));
        assert!(texts(&long).is_empty());
        let (g, from, to) = &edges("价格iPhone15手机")[0];
        assert_eq!((g.as_str(), &"价格iPhone15手机"[*from..*to]), ("格iphone", "格iPhone"));
    }

    fn texts(n: usize, s: &str) -> Vec<String> {
        let mut t = CjkGrams { n };
        let mut stream = t.token_stream(s);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    }

    #[test]
    fn bigrams_and_unigrams_of_cjk_runs_only() {
        assert_eq!(texts(2, "上海分公司 ok 会议"), ["上海", "海分", "分公", "公司", "会议"]);
        assert_eq!(texts(1, "桥 a 会议"), ["桥", "会", "议"]);
        assert_eq!(texts(2, "just english"), Vec::<String>::new());
        assert_eq!(grams("视频会议", 2).iter().map(|g| g.0.as_str()).collect::<Vec<_>>(), ["视频", "频会", "会议"]);
        assert!(is_cjk('桥') && is_cjk('の') && is_cjk('한') && !is_cjk('a') && !is_cjk('，'));
    }

    #[test]
    fn mixed_words_split_into_letter_and_digit_runs() {
        assert_eq!(mixed_runs("iphone15"), Some(vec![(0, 6), (6, 8)]));
        assert_eq!(mixed_runs("5g"), Some(vec![(0, 1), (1, 2)]));
        assert_eq!(mixed_runs("a1b22"), Some(vec![(0, 1), (1, 2), (2, 3), (3, 5)]));
        assert_eq!(mixed_runs("iphone"), None);
        assert_eq!(mixed_runs("2026"), None);
        assert_eq!(mixed_runs("v2.3"), None);
        let words = |split_mixed, s: &str| {
            let mut w = Words { jieba: tantivy_jieba::JiebaTokenizer::new(), split_mixed };
            let mut stream = w.token_stream(s);
            let mut out = Vec::new();
            while stream.advance() {
                out.push((stream.token().text.clone(), stream.token().position));
            }
            out
        };
        let pos = |v: &[(&str, usize)]| v.iter().map(|(t, p)| (t.to_string(), *p)).collect::<Vec<_>>();
        assert_eq!(
            words(true, "iPhone15 到了"),
            pos(&[("iPhone15", 0), ("iPhone", 0), ("15", 0), ("到", 1), ("了", 2)])
        );
        assert_eq!(words(false, "iPhone15 到了"), pos(&[("iPhone15", 0), ("到", 1), ("了", 2)]));
        let with = |s: &str, form: &str| words(true, s).iter().any(|(t, _)| t.eq_ignore_ascii_case(form));
        assert!(with("请用e-mail通知", "email") && with("Wi-Fi密码", "WiFi") && with("follow-up", "followup"));
        assert!(with("每台1,299元", "1299") && with("共 12,000,000 元", "12000000") && with("满意度92%", "92"));
        assert!(!with("1,2,3", "123") && !with("1,2345", "12345") && !with("a1,299", "1299"));
    }

    #[test]
    fn short_latin_runs_touching_cjk_are_cut_in_the_dictionary_case() {
        assert_eq!(dictionary_case("我的u盘坏了").as_deref(), Some("我的U盘坏了"));
        assert_eq!(dictionary_case("ip地址和b座").as_deref(), Some("IP地址和B座"));
        assert_eq!(dictionary_case("总部B座"), None);
        assert_eq!(dictionary_case("iPhone15到了"), None, "a long run is left as typed");
        assert_eq!(dictionary_case("just english"), None);
        assert_eq!(dictionary_case("a u 盘"), None, "a space parts them");
        assert_eq!(latin_in_cjk("QQ号"), [(0, 2)]);
        assert_eq!(latin_in_cjk("卡拉OK厅"), [(6, 8)]);
        assert!(latin_in_cjk("iPhone15").is_empty() && latin_in_cjk("会议").is_empty());
    }

    #[test]
    fn hyphenated_codes_also_hold_their_shorter_runs() {
        let runs = |w: &str| hyphen_runs(w).into_iter().map(|(s, e)| w[s..e].to_owned()).collect::<Vec<_>>();
        assert_eq!(runs("HT-2024-001"), ["HT-2024", "2024-001"]);
        assert_eq!(runs("a-b-c-d"), ["a-b", "b-c", "c-d", "a-b-c", "b-c-d"]);
        assert_eq!(runs("snake_case_name"), ["snake_case", "case_name"]);
        for none in ["e-mail", "a--b-c", "会-议-室", "a-b-c-d-e-f-g", "abc", "a-b_c-d", "snake_case"] {
            assert!(runs(none).is_empty(), "{none}");
        }
    }

    #[test]
    fn joined_forms() {
        assert_eq!(joined("e-mail").as_deref(), Some("email"));
        assert_eq!(joined("ht-2026-0815").as_deref(), Some("ht20260815"));
        assert_eq!(joined("1,299").as_deref(), Some("1299"));
        assert_eq!(joined("1,299,000").as_deref(), Some("1299000"));
        for date in ["2024/05/01", "2024/5/1", "2024-05-01", "2024-5-1", "2024.5.1"] {
            assert_eq!(joined(date).as_deref(), Some("20240501"), "{date}");
        }
        assert_eq!(joined("2024/11/1").as_deref(), Some("20241101"));
        assert_eq!(joined("2024/1/11").as_deref(), Some("20240111"), "no collision with 2024/11/1");
        assert_eq!(joined("Node.js").as_deref(), Some("Nodejs"));
        assert_eq!(joined("U.S.A").as_deref(), Some("USA"));
        for no in [
            "email",
            "-mail",
            "e-",
            "e--mail",
            "会-议",
            "1,29",
            "1234,567",
            "1,2",
            "2.3.1",
            "192.168.1.1",
            "3.14",
            "1.5GB",
            "3.5mm",
            "v1.2",
            "1/2",
            "24/7",
            "2024/13/01",
            "2024/5/1/2",
        ] {
            assert_eq!(joined(no), None, "{no}");
        }
        assert_eq!(digit_groups("截止 2024/05/01，或 2024/5/1 前；不算 1/2、24/7、a/2024/1/2"), [(7, 17), (24, 32)]);
        assert_eq!(digit_groups("每台1,299元，共12,000,000台"), [(6, 11), (20, 30)]);
        assert_eq!(version_forms("v2.3.1"), ["2.3", "2.3.1"]);
        assert_eq!(version_forms("10.4.2"), ["10.4"]);
        assert!(version_forms("3.5").is_empty() && version_forms("v2").is_empty() && version_forms("a.b").is_empty());
        assert!(digit_groups("1,2,3 and 12,34 and x1,299").is_empty());
    }
}
