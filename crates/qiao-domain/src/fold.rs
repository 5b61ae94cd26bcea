//! Folding, so that the ways one word can be typed find each other: full-width letters,
//! digits and punctuation (what a Chinese input method gives in full-width mode: ＰＰＴ,
//! ２０２６) become ASCII, the ideographic space a space, Latin letters with diacritics their
//! letters (café → cafe), and traditional characters their simplified forms (會議 → 会议, 電子郵件 → 电子邮件). The indexed text and the query are
//! folded alike, one character to one character, so a match in the folded text is a match
//! at the same characters of the original (search snippets rely on it). Message search and
//! the people directory both match on folded text.

use std::borrow::Cow;
use std::sync::LazyLock;

#[path = "t2s_table.rs"]
mod table;

/// Traditional → simplified, sorted by the first (from OpenCC's character table and Unihan's
/// kSimplifiedVariant; every target is in the BMP's CJK blocks).
static T2S: LazyLock<Vec<(char, char)>> = LazyLock::new(|| {
    let chars: Vec<char> = table::T2S.chars().collect();
    let pairs: Vec<(char, char)> = chars.chunks_exact(2).map(|p| (p[0], p[1])).collect();
    debug_assert!(pairs.windows(2).all(|w| w[0].0 < w[1].0));
    pairs
});

/// Latin letters with diacritics (U+00C0–U+024F that decompose to an ASCII letter and
/// marks: é, ü, ñ, and pinyin's ā, ǎ) and, position for position, their letters: café finds
/// cafe, Běijīng finds Beijing. Generated from Unicode's decompositions.
static ACCENTED: &str = "\
ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿĀāĂăĄąĆ\
ćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐő\
ŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽžƠơƯưǍǎǏǐǑǒǓǔǕǖǗǘǙǚǛ\
ǜǞǟǠǡǦǧǨǩǪǫǬǭǰǴǵǸǹǺǻȀȁȂȃȄȅȆȇȈȉȊȋȌȍȎȏȐȑȒȓȔȕȖȗȘșȚțȞȟȦȧȨȩȪȫȬȭȮȯ\
ȰȱȲȳ\
";
static ACCENT_BASES: &str = "\
AAAAAACEEEEIIIINOOOOOUUUUYaaaaaaceeeeiiiinooooouuuuyyAaAaAaC\
cCcCcCcDdEeEeEeEeEeGgGgGgGgHhIiIiIiIiIJjKkLlLlLlNnNnNnOoOoOo\
RrRrRrSsSsSsSsTtTtUuUuUuUuUuUuWwYyYZzZzZzOoUuAaIiOoUuUuUuUuU\
uAaAaGgKkOoOojGgNnAaAaAaEeEeIiIiOoOoRrRrUuUuSsTtHhAaEeOoOoOo\
OoYy\
";

static UNACCENT: LazyLock<Vec<(char, char)>> = LazyLock::new(|| ACCENTED.chars().zip(ACCENT_BASES.chars()).collect());

/// Full-width ASCII and the ideographic space as ASCII; every other character as it is.
pub fn fold_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// [`fold_width`], a Latin letter with diacritics as its letter, and a traditional character
/// as its simplified form.
pub fn fold_char(c: char) -> char {
    let c = fold_width(c);
    // Every traditional character in the table is at or above CJK Extension A.
    if (c as u32) < 0x3400 {
        if ('\u{c0}'..='\u{24f}').contains(&c)
            && let Ok(i) = UNACCENT.binary_search_by_key(&c, |&(a, _)| a)
        {
            return UNACCENT[i].1;
        }
        return c;
    }
    match T2S.binary_search_by_key(&c, |&(t, _)| t) {
        Ok(i) => T2S[i].1,
        Err(_) => c,
    }
}

/// A text with every character folded by `f` (borrowed when nothing changes).
fn fold_with(text: &str, f: fn(char) -> char) -> Cow<'_, str> {
    match text.char_indices().find(|&(_, c)| f(c) != c) {
        None => Cow::Borrowed(text),
        Some((first, _)) => {
            let mut out = String::with_capacity(text.len());
            out.push_str(&text[..first]);
            out.extend(text[first..].chars().map(f));
            Cow::Owned(out)
        }
    }
}

/// A text folded for the index or a query: width, diacritics and traditional characters.
pub fn fold(text: &str) -> Cow<'_, str> {
    fold_with(text, fold_char)
}

/// A text with full-width ASCII folded (query syntax: `ｆｒｏｍ：`, full-width quotes are
/// handled by the parser).
pub fn fold_widths(text: &str) -> Cow<'_, str> {
    fold_with(text, fold_width)
}

/// The form two texts are compared in for matching (the people directory): [`fold`]ed, then
/// trimmed and lower-cased ([`crate::text::fold`]).
pub fn for_matching(text: &str) -> String {
    // Folded first: lower-casing İ gives i and a combining dot, which folding would not see.
    crate::text::fold(&fold(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_and_traditional_characters_fold() {
        assert_eq!(fold("ＰＰＴ２０２６！"), "PPT2026!");
        assert_eq!(fold("會議　電子郵件"), "会议 电子邮件");
        assert_eq!(fold("头发 頭髮 發展"), "头发 头发 发展");
        // The forms written in Taiwan and Hong Kong, and everyday targets (not rare newly
        // encoded ones); a character simplified text uses as it is stays, unless OpenCC's
        // first choice for it is another (關於 → 关于, 乾淨 → 干净).
        assert_eq!(fold("下週這裡見 讚 鑑定 關於 遊戲"), "下周这里见 赞 鉴定 关于 游戏");
        assert_eq!(fold("著作 玛瑙"), "著作 玛瑙");
        // Regional variants and pronouns written apart by gender.
        assert_eq!(fold("妳好 衹是 衞生 牠"), "你好 只是 卫生 它");
        assert!(matches!(fold("plain 简体 text"), Cow::Borrowed(_)));
        assert_eq!(fold_widths("ｆｒｏｍ：會"), "from:會");
        assert_eq!(for_matching(" Ｌｉ Lei 張偉 "), "li lei 张伟");
    }

    #[test]
    fn diacritics_fold_to_their_letters() {
        assert_eq!(fold("Café résumé Běijīng Ñandú Zürich"), "Cafe resume Beijing Nandu Zurich");
        assert_eq!(ACCENTED.chars().count(), ACCENT_BASES.chars().count());
        assert!(UNACCENT.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(UNACCENT.iter().all(|&(_, b)| b.is_ascii_alphabetic()));
        assert_eq!(fold("ß æ ø"), "ß æ ø", "letters of their own stay");
        assert_eq!(for_matching("İlker Çelik"), "ilker celik");
    }

    #[test]
    fn one_character_for_one() {
        let table: Vec<char> = table::T2S.chars().collect();
        assert_eq!(table.len() % 2, 0);
        assert!(T2S.len() > 2_500, "{}", T2S.len());
        for &(t, s) in T2S.iter() {
            assert_ne!(t, s);
            assert_eq!(fold_char(t), s, "{t}");
            assert_eq!(fold_char(s), s, "folding twice changes nothing: {t} → {s}");
            assert!(matches!(s as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF), "{t} → {s}");
        }
    }
}
