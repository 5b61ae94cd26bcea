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
        | 0x20000..=0x2ebef) // Extensions B–F
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

/// The CJK runs of a text: (byte offset, characters).
pub fn cjk_runs(text: &str) -> Vec<(usize, Vec<(usize, char)>)> {
    let mut runs = Vec::new();
    let mut cur: Vec<(usize, char)> = Vec::new();
    for (i, c) in text.char_indices() {
        if is_cjk(c) {
            cur.push((i, c));
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
/// (so "project deadline" is a two-word phrase). For the index (`split_mixed`), a word of
/// ASCII letters and digits is also recorded as its letter and digit runs, at the same
/// position, so `iphone` finds iPhone15 and `q3` stays one word for phrases; queries keep
/// words whole.
#[derive(Clone)]
pub struct Words {
    pub jieba: tantivy_jieba::JiebaTokenizer,
    pub split_mixed: bool,
}

/// The letter and digit runs of an ASCII word that has both (`iphone15` → iphone, 15).
fn mixed_runs(word: &str) -> Option<Vec<(usize, usize)>> {
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

impl Tokenizer for Words {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        let mut inner = self.jieba.token_stream(text);
        let mut tokens: Vec<Token> = Vec::new();
        let mut position = 0;
        while inner.advance() {
            let t = inner.token();
            if !t.text.chars().any(char::is_alphanumeric) {
                continue;
            }
            let mut word = t.clone();
            word.position = position;
            let runs = if self.split_mixed { mixed_runs(&word.text) } else { None };
            tokens.push(word);
            for (s, e) in runs.into_iter().flatten() {
                tokens.push(Token {
                    offset_from: t.offset_from + s,
                    offset_to: t.offset_from + e,
                    position,
                    text: t.text[s..e].to_owned(),
                    position_length: 1,
                });
            }
            position += 1;
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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
