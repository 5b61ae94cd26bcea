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
            match key {
                "from" if !value.is_empty() => q.from = Some(value.trim_start_matches('@').to_lowercase()),
                "in" if !value.is_empty() => q.in_conversation = Some(value.trim_start_matches('#').to_owned()),
                _ => {}
            }
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
        match word.split_once(':') {
            Some(("from", v)) if !v.is_empty() => q.from = Some(v.trim_start_matches('@').to_lowercase()),
            Some(("in", v)) if !v.is_empty() => q.in_conversation = Some(v.trim_start_matches('#').to_owned()),
            Some(("has", "file" | "files" | "attachment")) => q.has_file = true,
            Some(("has", v)) => return Err(format!("unknown filter has:{v} (use has:file)")),
            Some(("before", v)) => {
                q.before_day = Some(day(v).ok_or_else(|| format!("before:{v} is not a date (YYYY-MM-DD)"))?)
            }
            Some(("after", v)) => {
                q.after_day = Some(day(v).ok_or_else(|| format!("after:{v} is not a date (YYYY-MM-DD)"))?)
            }
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

/// Whether a word can match anything: the index holds letters, digits and CJK characters,
/// not symbols or emoji (a query of `上线 🎉` searches for 上线; one of `🎉` alone is empty).
fn searchable(word: &str) -> bool {
    word.chars().any(char::is_alphanumeric)
}

/// `from:"Lucy Wang"` or `in:"Sales team"` at the start of `rest`: a filter whose value
/// holds spaces. Returns the filter, its value and what follows.
fn quoted_filter(rest: &str) -> Option<(&str, &str, &str)> {
    let (key, tail) = rest.split_once(':')?;
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
    if parts.next().is_some() || !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
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
        assert!(parse(r#"from:"" x"#).unwrap().from.is_none());
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
    }
}
