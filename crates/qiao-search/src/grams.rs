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
/// (so "project deadline" is a two-word phrase).
#[derive(Clone)]
pub struct Words(pub tantivy_jieba::JiebaTokenizer);

impl Tokenizer for Words {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        let mut inner = self.0.token_stream(text);
        let mut tokens = Vec::new();
        while inner.advance() {
            let t = inner.token();
            if t.text.chars().any(char::is_alphanumeric) {
                let mut t = t.clone();
                t.position = tokens.len();
                tokens.push(t);
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
}
