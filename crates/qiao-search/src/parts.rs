//! How an unquoted query word is loosened. People type 季度报告 for 第三季度的销售报告 and
//! WiFi密码 for "Wi-Fi 密码": without spaces, a Chinese query is several words. The word is
//! cut into runs of CJK and of other characters, a run of letters and digits into its letters
//! and its digits (ios17), and a run of three or more Chinese characters into words (jieba's
//! precise cut, without particles such as 的 and 了). Each part must occur in a message,
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
    // A single character between scripts belongs to its neighbours: 3月5日 is a date, not
    // 3, 月, 5 and 日 anywhere in a message (nor b座 a b and a 座).
    let lone = |(r, _): &(String, bool)| r.chars().filter(|c| c.is_alphanumeric()).count() == 1;
    if runs.len() > 1 && runs.iter().any(lone) {
        return vec![word.to_owned()];
    }
    let mut out = Vec::new();
    for (run, cjk) in runs {
        push_run(&mut out, run, cjk);
    }
    out
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
            out.push(w.clone());
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
        assert_eq!(parts("视频会议"), ["视频会议"]);
        assert_eq!(parts("e-mail"), ["e-mail"]);
        assert_eq!(parts("的了"), ["的了"]);
        assert_eq!(parts("ありがとう"), ["ありがとう"], "kana stays whole");
        assert_eq!(parts("안녕하세요"), ["안녕하세요"], "Hangul stays whole");
        assert_eq!(parts("東京タワー"), ["東京タワー"], "a run with kana in it too");
        assert_eq!(parts("，"), Vec::<String>::new());
        // A lone character between scripts keeps the word whole.
        assert_eq!(parts("3月5日"), ["3月5日"]);
        assert_eq!(parts("3楼"), ["3楼"]);
        assert_eq!(parts("b座"), ["b座"]);
        assert_eq!(parts("3点开会"), ["3点开会"]);
        assert_eq!(parts("Q3报告"), ["Q3", "报告"]);
    }
}
