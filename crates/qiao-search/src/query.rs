//! The search box's language: words and "phrases" in any mix of Chinese and English, and
//! the filters `from:`, `in:`, `has:file`, `before:` and `after:` (dates as YYYY-MM-DD).

/// A parsed query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// Every one must match (a word, or a phrase when quoted).
    pub terms: Vec<Term>,
    /// `from:username` (or `from:@username`), or a person's name or its pinyin
    /// (`from:张伟`, `from:zhangwei`, `from:"zhang wei"`): the service resolves it.
    pub from: Option<String>,
    /// `in:channel-name` (or `in:#name`, or `in:"a name with spaces"`).
    pub in_conversation: Option<String>,
    /// `has:file`.
    pub has_file: bool,
    /// `before:YYYY-MM-DD`: days since the epoch (UTC), exclusive.
    pub before_day: Option<i64>,
    /// `after:YYYY-MM-DD`: days since the epoch (UTC), exclusive.
    pub after_day: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term {
    pub text: String,
    pub phrase: bool,
}

/// Words and phrases one query matches, at most: those after are left out (each is a list to
/// walk, and a query may be 200 characters of one-character words).
pub const TERMS_MAX: usize = 16;

impl Query {
    /// Adds a word or phrase, unless the query already has it (in any case) or has
    /// [`TERMS_MAX`].
    fn push(&mut self, term: Term) {
        let same = |t: &Term| t.phrase == term.phrase && t.text.to_lowercase() == term.text.to_lowercase();
        if self.terms.len() < TERMS_MAX && !self.terms.iter().any(same) {
            self.terms.push(term);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
            && self.from.is_none()
            && self.in_conversation.is_none()
            && !self.has_file
            && self.before_day.is_none()
            && self.after_day.is_none()
    }
}

/// Parses a query; an invalid filter is an error naming it.
pub fn parse(input: &str) -> Result<Query, String> {
    let mut q = Query::default();
    // Full-width letters, digits and punctuation (`ｆｒｏｍ：`, `＂`) read as ASCII.
    let input = qiao_domain::fold::fold_widths(input);
    let mut rest = input.trim();
    while !rest.is_empty() {
        if let Some((key, value, after)) = quoted_filter(rest) {
            set_filter(&mut q, &key, value)?;
            rest = after;
            continue;
        }
        if let Some(after) = rest.strip_prefix('"').or_else(|| rest.strip_prefix('“')) {
            let end = after.find(['"', '”']).unwrap_or(after.len());
            let phrase = after[..end].trim();
            if searchable(phrase) {
                q.push(Term { text: phrase.to_owned(), phrase: true });
            }
            rest = after.get(end..).map(|r| r.trim_start_matches(['"', '”'])).unwrap_or("").trim_start();
            continue;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..end];
        rest = rest[end..].trim_start();
        let filter = word.split_once(':').map(|(k, v)| (k.to_ascii_lowercase(), v));
        match filter {
            Some((key, v)) if FILTERS.contains(&key.as_str()) => set_filter(&mut q, &key, v)?,
            _ => {
                // Chinese list marks and brackets part words (张伟、李娜, 【紧急】).
                for piece in word.split(|c: char| "、【】《》「」『』〈〉（）·…".contains(c)) {
                    // `#`, `@` and `+` belong to words (C#, C++, @name), and `%` to a number.
                    let w = piece.trim_matches(|c: char| {
                        c.is_ascii_punctuation() && !matches!(c, '#' | '@' | '+' | '%') || "，。！？；：".contains(c)
                    });
                    let w = if w.ends_with('%') && !w.trim_end_matches('%').ends_with(|c: char| c.is_ascii_digit()) {
                        w.trim_end_matches('%')
                    } else {
                        w
                    };
                    if searchable(w) {
                        q.push(Term { text: w.to_owned(), phrase: false });
                    }
                }
            }
        }
    }
    Ok(q)
}

/// The filters a query may hold, each at most once (keys in any case: `FROM:` is `from:`).
const FILTERS: [&str; 5] = ["from", "in", "has", "before", "after"];

/// Sets one filter, refusing an empty value (`from: lucy`, with a space, or `from:` at the
/// end), a second one of the same key with another value (which would silently win), an
/// unknown `has:` and a date that does not exist.
fn set_filter(q: &mut Query, key: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        let example = match key {
            "from" => "from:username",
            "in" => "in:channel-name",
            "has" => "has:file",
            _ => "YYYY-MM-DD",
        };
        return Err(format!("{key}: needs a value right after the colon, without a space ({example})"));
    }
    // A filter given again with the same value (in any case) is the same filter.
    fn once<T>(slot: &mut Option<T>, v: T, same: fn(&T, &T) -> bool, key: &str) -> Result<(), String> {
        match slot {
            Some(old) if !same(old, &v) => Err(format!("give {key}: once per search")),
            _ => {
                *slot = Some(v);
                Ok(())
            }
        }
    }
    let text = |a: &String, b: &String| a.eq_ignore_ascii_case(b);
    let date = || day(value).ok_or_else(|| format!("{key}:{value} is not a date (YYYY-MM-DD)"));
    match key {
        "from" => once(&mut q.from, value.trim_start_matches('@').to_lowercase(), text, key),
        "in" => once(&mut q.in_conversation, value.trim_start_matches('#').to_owned(), text, key),
        "has" if matches!(value.to_ascii_lowercase().as_str(), "file" | "files" | "attachment") => {
            q.has_file = true;
            Ok(())
        }
        "has" => Err(format!("unknown filter has:{value} (use has:file)")),
        "before" => once(&mut q.before_day, date()?, i64::eq, key),
        _ => once(&mut q.after_day, date()?, i64::eq, key),
    }
}

/// Whether a word can match anything: the index holds letters, digits and CJK characters,
/// not symbols or emoji (a query of `上线 🎉` searches for 上线; one of `🎉` alone is empty).
fn searchable(word: &str) -> bool {
    word.chars().any(char::is_alphanumeric)
}

/// `from:"Lucy Wang"` or `in:"Sales team"` at the start of `rest`: a filter whose value
/// holds spaces. Returns the filter, its value and what follows.
fn quoted_filter(rest: &str) -> Option<(String, &str, &str)> {
    let (key, tail) = rest.split_once(':')?;
    let key = key.to_ascii_lowercase();
    if key != "from" && key != "in" {
        return None;
    }
    let inner = tail.strip_prefix('"').or_else(|| tail.strip_prefix('“'))?;
    let end = inner.find(['"', '”']).unwrap_or(inner.len());
    Some((key, inner[..end].trim(), inner[end..].trim_start_matches(['"', '”']).trim_start()))
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
pub fn day(s: &str) -> Option<i64> {
    let mut parts = s.split('-');
    let (y, m, d): (i64, i64, i64) =
        (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days_in_month = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if parts.next().is_some()
        || !(1970..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || !(1..=days_in_month).contains(&d)
    {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_phrases_and_filters() {
        let q = parse(r#"项目 deadline "季度 报告" from:@LiLei in:#sales has:file after:2026-01-31 before:2026-02-02"#)
            .unwrap();
        assert_eq!(
            q.terms,
            vec![
                Term { text: "项目".into(), phrase: false },
                Term { text: "deadline".into(), phrase: false },
                Term { text: "季度 报告".into(), phrase: true },
            ]
        );
        assert_eq!((q.from.as_deref(), q.in_conversation.as_deref(), q.has_file), (Some("lilei"), Some("sales"), true));
        assert_eq!(q.after_day, day("2026-01-31"));
        assert_eq!(q.before_day.unwrap() - q.after_day.unwrap(), 2);
        assert!(parse("has:cake").is_err());
        assert!(parse("before:yesterday").is_err());
        assert_eq!(parse("“视频会议”").unwrap().terms[0], Term { text: "视频会议".into(), phrase: true });
        assert!(parse("   ").unwrap().is_empty());
    }

    #[test]
    fn filter_values_with_spaces_are_quoted() {
        let q = parse(r#"from:"Lucy Wang" in:“Sales team” 会议"#).unwrap();
        assert_eq!((q.from.as_deref(), q.in_conversation.as_deref()), (Some("lucy wang"), Some("Sales team")));
        assert_eq!(q.terms, vec![Term { text: "会议".into(), phrase: false }]);
        let q = parse(r#"预算 from:"zhang wei"#).unwrap(); // unclosed: to the end
        assert_eq!((q.from.as_deref(), q.terms.len()), (Some("zhang wei"), 1));
        assert!(parse(r#"from:"" x"#).is_err());
    }

    #[test]
    fn filters_need_a_value_are_given_once_and_ignore_case() {
        for q in ["from: lucy", "deadline from:", "in: general", r#"in:"" deadline"#, "before:", "has:"] {
            let e = parse(q).unwrap_err();
            assert!(e.contains("needs a value"), "{q}: {e}");
        }
        assert!(parse("from:lucy from:nana").unwrap_err().contains("once"));
        assert!(parse("in:general in:项目组").is_err());
        assert!(parse("after:2026-01-01 after:2026-02-01").is_err());
        let q = parse("from:lucy FROM:Lucy In:general HAS:File 周报").unwrap();
        assert_eq!(
            (q.from.as_deref(), q.in_conversation.as_deref(), q.has_file),
            (Some("lucy"), Some("general"), true)
        );
        // Other words with a colon are words.
        assert_eq!(parse("10:30 https://x.cn").unwrap().terms.len(), 2);
    }

    #[test]
    fn repeated_words_count_once_and_words_are_capped() {
        let q = parse(&"的 ".repeat(100)).unwrap();
        assert_eq!(q.terms.len(), 1);
        let q = parse("Report report \"a b\" \"A B\" report,").unwrap();
        assert_eq!(q.terms.len(), 2, "{q:?}");
        let many: Vec<String> = (0..40).map(|i| format!("w{i}")).collect();
        let q = parse(&many.join(" ")).unwrap();
        assert_eq!(q.terms.len(), TERMS_MAX);
        assert_eq!(q.terms[TERMS_MAX - 1].text, format!("w{}", TERMS_MAX - 1));
        assert_eq!(parse("C++ 和 C# 开发").unwrap().terms[0].text, "C++");
        let texts = |q: &str| parse(q).unwrap().terms.into_iter().map(|t| t.text).collect::<Vec<_>>();
        assert_eq!(texts("增长10%，"), ["增长10%"]);
        assert_eq!(texts("100% done%"), ["100%", "done"]);
        assert_eq!(texts("张伟、李娜 【紧急】"), ["张伟", "李娜", "紧急"]);
    }

    #[test]
    fn dates() {
        assert_eq!(day("1970-01-01"), Some(0));
        assert_eq!(day("2000-03-01"), Some(11_017));
        assert_eq!(day("2026-13-01"), None);
        assert_eq!(day("2026-02-30"), None);
        assert_eq!(day("2026-04-31"), None);
        assert_eq!(day("2026-02-29"), None);
        assert_eq!(day("2028-02-29"), Some(day("2028-02-28").unwrap() + 1));
        assert_eq!(day("2000-02-29"), Some(11_016));
        assert_eq!(day("1900-02-29"), None);
    }
}
