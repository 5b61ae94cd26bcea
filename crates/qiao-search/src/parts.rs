//! How an unquoted query word is loosened. People type 季度报告 for 第三季度的销售报告 and
//! WiFi密码 for "Wi-Fi 密码": without spaces, a Chinese query is several words. The word is
//! cut into runs of CJK and of other characters, a run of letters and digits into its letters
//! and its digits (ios17), a word joined by other characters into its parts (acme-corp; not a
//! number, whose parts would be numbers anywhere), a version typed with its letter into its
//! number (v2.3), and a run of three or more Chinese characters into words (jieba's precise
//! cut, without particles such as 的 and 了; a dictionary word of four characters or more into
//! the shorter words that cover it, 人力资源 into 人力 and 资源). Each part must occur in a message,
//! anywhere; the whole word in a row only ranks a message higher.

use tantivy::tokenizer::{TokenStream, Tokenizer};

use crate::grams::{is_cjk, mixed_runs};

/// Single characters that carry no meaning of their own in a query (的, 了, …).
const PARTICLES: &str = "的地得了着过是在和与及或把被也都就吗呢吧啊";

/// The parts of an unquoted query word, in order; one part when it cannot be loosened.
pub fn parts(word: &str) -> Vec<String> {
    let mut runs: Vec<(String, bool)> = Vec::new();
    let mut run = String::new();
    let mut run_cjk = false;
    for c in word.chars() {
        let cjk = is_cjk(c);
        if c.is_whitespace() || (!run.is_empty() && cjk != run_cjk) {
            runs.push((std::mem::take(&mut run), run_cjk));
        }
        if !c.is_whitespace() {
            run.push(c);
            run_cjk = cjk;
        }
    }
    runs.push((run, run_cjk));
    runs.retain(|(r, _)| !r.is_empty());
    let mut out = Vec::new();
    let mut runs = runs.into_iter().peekable();
    while let Some((run, cjk)) = runs.next() {
        // A lone letter or digit goes with the Chinese word after it: 3月5日 is 3月 and 5日,
        // not 3, 月, 5 and 日 anywhere in a message; b座 stays b座, 第3季度 has 3季度.
        let lone = !cjk && run.chars().count() == 1 && run.chars().all(|c| c.is_alphanumeric());
        if lone
            && let Some((next, true)) = runs.peek()
            && next.chars().all(is_han)
        {
            let (next, _) = runs.next().unwrap_or_default();
            let n = glued(&run, &next);
            out.push(format!("{run}{}", &next[..n]));
            push_run(&mut out, next[n..].to_owned(), true);
            continue;
        }
        push_run(&mut out, run, cjk);
    }
    out
}

/// How many bytes of the Chinese run `next` go with the lone letter or digit before it: the
/// rest of a dictionary word they start (U盘 in U盘坏了), or else the run's first word.
fn glued(lone: &str, next: &str) -> usize {
    let joined = format!("{lone}{next}");
    let cut = crate::grams::dictionary_case(&joined).unwrap_or(joined);
    let first = first_word(&cut);
    if first.len() > lone.len() && cut.starts_with(first.as_str()) {
        return first.len() - lone.len();
    }
    let word = first_word(next);
    if next.starts_with(word.as_str()) { word.len() } else { next.len() }
}

/// The first word of a text (jieba's precise cut).
fn first_word(run: &str) -> String {
    let mut precise = tantivy_jieba::JiebaTokenizer::with_search_mode(false);
    let mut stream = precise.token_stream(run);
    if stream.advance() { stream.token().text.clone() } else { run.to_owned() }
}

/// A dictionary word of four or more characters as the shorter dictionary words it is made
/// of, end to end (人力资源 as 人力 and 资源, 视频会议 as 视频 and 会议): people write those
/// apart too (人力 资源, 视频的会议). `None` when no such words of two or more characters
/// cover it (一丝不苟), so that no word falls apart into single characters.
fn sub_words(word: &str) -> Option<Vec<String>> {
    // (Four characters at least.)
    word.chars().nth(3)?;
    // jieba's search mode gives the word and the dictionary words inside it, with offsets.
    let mut inside = Vec::new();
    let mut search = tantivy_jieba::JiebaTokenizer::with_search_mode(true);
    let mut stream = search.token_stream(word);
    while stream.advance() {
        let t = stream.token();
        if t.offset_to - t.offset_from < word.len() && t.text.chars().nth(1).is_some() {
            inside.push((t.offset_from, t.offset_to));
        }
    }
    // Covered from the start, the longest word at each step.
    let (mut at, mut subs) = (0, Vec::new());
    while at < word.len() {
        let (_, to) = inside.iter().filter(|(from, _)| *from == at).max_by_key(|(_, to)| *to)?;
        subs.push(word[at..*to].to_owned());
        at = *to;
    }
    Some(subs)
}

/// Chinese characters (not kana or Hangul, which [`is_cjk`] also counts).
fn is_han(c: char) -> bool {
    is_cjk(c) && !matches!(c as u32, 0x3040..=0x30ff | 0xac00..=0xd7af)
}

fn push_run(out: &mut Vec<String>, run: String, cjk: bool) {
    if !cjk {
        if !run.chars().any(char::is_alphanumeric) {
            return;
        }
        // A version typed with its letter (v2.3) loosens into its number, whose prefixes the
        // index holds (2.3 finds v2.3.1).
        if let Some(number) = crate::grams::version_number(&run) {
            out.push(number.to_owned());
            return;
        }
        // acme-corp finds api.acme-corp.cn: the parts of a word joined by other characters
        // apart, when each is long enough to mean something (e-mail stays whole) and the word
        // is not a number: a date, a time, a phone number or a decimal apart would be numbers
        // anywhere (2024-05-01 is not 2024-01-05), and 1.5GB keeps its number.
        let pieces: Vec<&str> = run.split(|c: char| !c.is_alphanumeric()).filter(|p| !p.is_empty()).collect();
        let dotted_number = run
            .split(|c: char| c.is_ascii_alphabetic())
            .any(|p| p.contains('.') && p.bytes().any(|b| b.is_ascii_digit()));
        let number = !run.chars().any(char::is_alphabetic);
        if pieces.len() > 1 && pieces.iter().all(|p| p.chars().count() >= 2) && !dotted_number && !number {
            for piece in pieces {
                push_run(out, piece.to_owned(), false);
            }
            return;
        }
        // ios17 finds "iOS 17": letters and digits apart, when each run is long enough to
        // mean something (q3 and mp4 stay whole).
        match mixed_runs(&run) {
            Some(runs) if runs.iter().all(|(s, e)| e - s >= 2) => {
                out.extend(runs.into_iter().map(|(s, e)| run[s..e].to_owned()));
            }
            _ => out.push(run),
        }
        return;
    }
    // Short runs stay whole, and so do kana and Hangul, which jieba does not know (it would
    // cut them into single characters that match almost anything).
    if run.chars().nth(2).is_none() || !run.chars().all(is_han) {
        if !run.is_empty() {
            out.push(run);
        }
        return;
    }
    let mut precise = tantivy_jieba::JiebaTokenizer::with_search_mode(false);
    let mut stream = precise.token_stream(&run);
    let before = out.len();
    while stream.advance() {
        let w = &stream.token().text;
        let particle = w.chars().count() == 1 && w.chars().all(|c| PARTICLES.contains(c));
        if !particle && w.chars().all(is_cjk) {
            match sub_words(w) {
                Some(subs) => out.extend(subs),
                None => out.push(w.clone()),
            }
        }
    }
    if out.len() == before {
        out.push(run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_typed_together_come_apart() {
        assert_eq!(parts("季度报告"), ["季度", "报告"]);
        assert_eq!(parts("数据库迁移"), ["数据库", "迁移"]);
        assert_eq!(parts("WiFi密码"), ["WiFi", "密码"]);
        assert_eq!(parts("bug修复"), ["bug", "修复"]);
        assert_eq!(parts("张经理的会"), ["张", "经理", "会"], "particles are left out");
        assert_eq!(parts("(PRD)文档"), ["(PRD)", "文档"]);
        assert_eq!(parts("ios17"), ["ios", "17"]);
        assert_eq!(parts("win11升级"), ["win", "11", "升级"]);
        assert_eq!(parts("q3"), ["q3"], "a one-letter run stays whole");
        assert_eq!(parts("mp4"), ["mp4"]);
        // What cannot be loosened stays whole.
        assert_eq!(parts("会议"), ["会议"]);
        assert_eq!(parts("视频"), ["视频"]);
        assert_eq!(parts("e-mail"), ["e-mail"]);
        assert_eq!(parts("acme-corp"), ["acme", "corp"]);
        assert_eq!(parts("support@qiao-corp"), ["support", "qiao", "corp"]);
        assert_eq!(parts("v2.3"), ["2.3"]);
        assert_eq!(parts("2024-05-01"), ["2024-05-01"]);
        assert_eq!(parts("400-820-8820"), ["400-820-8820"]);
        assert_eq!(parts("10:30"), ["10:30"]);
        assert_eq!(parts("PROJ-1024"), ["PROJ", "1024"]);
        assert_eq!(parts("1.5GB"), ["1.5GB"]);
        assert_eq!(parts("的了"), ["的了"]);
        assert_eq!(parts("ありがとう"), ["ありがとう"], "kana stays whole");
        assert_eq!(parts("안녕하세요"), ["안녕하세요"], "Hangul stays whole");
        assert_eq!(parts("東京タワー"), ["東京タワー"], "a run with kana in it too");
        assert_eq!(parts("，"), Vec::<String>::new());
        // A lone letter or digit goes with the Chinese word after it.
        assert_eq!(parts("3月5日"), ["3月", "5日"]);
        assert_eq!(parts("3楼"), ["3楼"]);
        assert_eq!(parts("b座"), ["b座"]);
        assert_eq!(parts("3楼会议室"), ["3楼", "会议室"]);
        assert_eq!(parts("第3季度报告"), ["第", "3季度", "报告"]);
        assert_eq!(parts("改bug"), ["改", "bug"]);
        assert_eq!(parts("U盘坏了"), ["U盘", "坏了"], "the dictionary's word, not jieba's guess at 盘坏");
        assert_eq!(parts("Q3报告"), ["Q3", "报告"]);
    }

    #[test]
    fn long_dictionary_words_come_apart_into_the_words_they_are_made_of() {
        assert_eq!(parts("人力资源"), ["人力", "资源"]);
        assert_eq!(parts("项目管理"), ["项目", "管理"]);
        assert_eq!(parts("会议纪要"), ["会议", "纪要"]);
        assert_eq!(parts("视频会议"), ["视频", "会议"]);
        assert_eq!(parts("人力资源会议"), ["人力", "资源", "会议"]);
        assert_eq!(parts("人力资源部"), ["人力资源部"], "人力, 资源 and 部: no single characters");
        // Not into single characters.
        for word in ["一丝不苟", "马马虎虎"] {
            assert!(parts(word).iter().all(|p| p.chars().count() >= 2), "{word}: {:?}", parts(word));
        }
    }
}
