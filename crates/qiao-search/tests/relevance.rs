//! Relevance and filtering on a small Chinese and English corpus.

use qiao_domain::{ConversationId, MessageId, UserId};
use qiao_search::{Change, Doc, Search, SearchIndex, parse, snippet};

const DAY: i64 = 86_400_000;
const NOW: i64 = 1_780_000_000_000;

struct Corpus {
    index: SearchIndex,
    ids: Vec<(MessageId, &'static str)>,
    public: ConversationId,
    secret: ConversationId,
    alice: UserId,
    bob: UserId,
}

const TEXTS: &[&str] = &[
    "上海分公司下周开会",
    "我们在上海市见面吧",
    "视频会议改到明天下午三点",
    "北京办公室的空调坏了",
    "欧阳娜娜明天来参加设计评审",
    "项目 deadline 是周五，大家抓紧",
    "The project deadline moved to Friday",
    "请在月底前提交季度报告",
    "报告里的季度数据有误",
    "Quarterly reports are due next week",
    "桥梁工程验收通过",
    "午饭吃什么",
];

fn corpus() -> Corpus {
    let index = SearchIndex::in_memory().unwrap();
    let (public, secret) = (ConversationId::new(), ConversationId::new());
    let (alice, bob) = (UserId::new(), UserId::new());
    let mut ids = Vec::new();
    let mut docs = Vec::new();
    for (i, text) in TEXTS.iter().enumerate() {
        let id = MessageId::new();
        ids.push((id, *text));
        docs.push(Doc {
            message_id: id,
            conversation_id: public,
            sender_id: if i % 2 == 0 { alice } else { bob },
            created_at: NOW - (i as i64) * DAY,
            text: (*text).to_owned(),
            has_file: i == 3,
        });
    }
    let hidden = MessageId::new();
    ids.push((hidden, "上海 secret plans"));
    docs.push(Doc {
        message_id: hidden,
        conversation_id: secret,
        sender_id: alice,
        created_at: NOW,
        text: "上海 secret plans".into(),
        has_file: false,
    });
    index.apply(&docs.into_iter().map(Change::Add).collect::<Vec<_>>()).unwrap();
    index.commit(7).unwrap();
    Corpus { index, ids, public, secret, alice, bob }
}

/// A query with no filters: the first ten hits.
/// A message in `conversation` by someone, without files.
fn message(id: MessageId, conversation: ConversationId, at: i64, text: &str) -> Doc {
    Doc {
        message_id: id,
        conversation_id: conversation,
        sender_id: UserId::new(),
        created_at: at,
        text: text.into(),
        has_file: false,
    }
}

fn plain<'a>(terms: &'a [qiao_search::query::Term], conversations: &'a [ConversationId]) -> Search<'a> {
    Search {
        terms,
        conversations,
        senders: &[],
        has_file: false,
        from_ms: None,
        to_ms: None,
        offset: 0,
        limit: 10,
        now: NOW,
    }
}

impl Corpus {
    fn find(&self, q: &str) -> Vec<&'static str> {
        self.find_in(q, &[self.public], &[])
    }

    fn find_in(&self, q: &str, conversations: &[ConversationId], senders: &[UserId]) -> Vec<&'static str> {
        let parsed = parse(q).unwrap();
        let day = |d: Option<i64>| d.map(|d| d * DAY);
        let (hits, total) = self
            .index
            .search(&Search {
                terms: &parsed.terms,
                conversations,
                senders,
                has_file: parsed.has_file,
                from_ms: day(parsed.after_day).map(|d| d + DAY),
                to_ms: day(parsed.before_day),
                offset: 0,
                limit: 20,
                now: NOW,
            })
            .unwrap();
        assert_eq!(total, hits.len(), "{q}");
        hits.iter().map(|h| self.ids.iter().find(|(id, _)| *id == h.message_id).unwrap().1).collect()
    }
}

#[test]
fn chinese_words_are_found_inside_longer_ones() {
    let c = corpus();
    let shanghai = c.find("上海");
    assert!(shanghai.contains(&"上海分公司下周开会") && shanghai.contains(&"我们在上海市见面吧"), "{shanghai:?}");
    assert_eq!(c.find("会议"), ["视频会议改到明天下午三点"]);
    assert_eq!(c.find("分公司"), ["上海分公司下周开会"]);
    assert_eq!(c.find("桥"), ["桥梁工程验收通过"], "one character");
    assert!(c.find("会").contains(&"上海分公司下周开会"));
}

#[test]
fn names_split_oddly_are_still_found() {
    let c = corpus();
    assert_eq!(c.find("欧阳娜娜"), ["欧阳娜娜明天来参加设计评审"]);
    assert_eq!(c.find("娜娜"), ["欧阳娜娜明天来参加设计评审"]);
    assert_eq!(c.find("阳娜"), ["欧阳娜娜明天来参加设计评审"]);
}

#[test]
fn mixed_and_english_queries() {
    let c = corpus();
    assert_eq!(c.find("项目 deadline"), ["项目 deadline 是周五，大家抓紧"]);
    let deadline = c.find("deadline");
    assert_eq!(deadline.len(), 2, "{deadline:?}");
    assert_eq!(c.find("DEADLINE friday"), ["The project deadline moved to Friday"]);
    assert_eq!(c.find("report"), ["Quarterly reports are due next week"], "stemmed");
    assert!(c.find("nothing-like-this").is_empty());
}

#[test]
fn phrase_order_matters() {
    let c = corpus();
    assert_eq!(c.find("\"季度报告\""), ["请在月底前提交季度报告"]);
    assert_eq!(c.find("\"报告季度\""), Vec::<&str>::new());
    let both = c.find("季度 报告");
    assert_eq!(both.len(), 2, "as words, both match: {both:?}");
    assert_eq!(c.find("\"project deadline\""), ["The project deadline moved to Friday"]);
    assert!(c.find("\"deadline project\"").is_empty());
}

#[test]
fn only_allowed_conversations_and_filters() {
    let c = corpus();
    assert!(!c.find("上海").contains(&"上海 secret plans"));
    assert_eq!(c.find_in("secret", &[c.secret], &[]), ["上海 secret plans"]);
    assert!(c.find_in("上海", &[], &[]).is_empty(), "no conversations, no results");
    assert_eq!(c.find_in("明天", &[c.public], &[c.bob]), Vec::<&str>::new());
    assert_eq!(c.find_in("明天", &[c.public], &[c.alice]).len(), 2);
    // Several senders (people of one name): from any of them.
    let every = c.find_in("after:2000-01-01", &[c.public], &[]);
    let (a, b) =
        (c.find_in("after:2000-01-01", &[c.public], &[c.alice]), c.find_in("after:2000-01-01", &[c.public], &[c.bob]));
    assert!(!a.is_empty() && !b.is_empty() && a.len() + b.len() == every.len());
    assert_eq!(c.find_in("after:2000-01-01", &[c.public], &[c.alice, c.bob]).len(), every.len());
    assert!(c.find_in("after:2000-01-01", &[c.public], &[UserId::new()]).is_empty());
    assert_eq!(c.find("has:file"), ["北京办公室的空调坏了"]);
    // Messages i days old; after: and before: bound them.
    let day = NOW / DAY;
    let date = |d: i64| {
        let (y, m, dd) = civil(d);
        format!("{y:04}-{m:02}-{dd:02}")
    };
    let recent = c.find(&format!("after:{}", date(day - 3)));
    assert!(recent.len() >= 2 && recent.len() <= 4, "{recent:?}");
    assert!(!c.find(&format!("before:{}", date(day - 5))).contains(&"上海分公司下周开会"));
}

fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[test]
fn newer_messages_rank_first_among_equals() {
    let index = SearchIndex::in_memory().unwrap();
    let conv = ConversationId::new();
    let (old, new) = (MessageId::new(), MessageId::new());
    let doc = |id, at| Change::Add(message(id, conv, at, "周会纪要"));
    index.apply(&[doc(old, NOW - 60 * DAY), doc(new, NOW - DAY)]).unwrap();
    index.commit(1).unwrap();
    let terms = parse("周会").unwrap().terms;
    let convs = [conv];
    let s = plain(&terms, &convs);
    let (hits, _) = index.search(&s).unwrap();
    assert_eq!(hits.iter().map(|h| h.message_id).collect::<Vec<_>>(), [new, old]);
    let page2 = index.search(&Search { offset: 1, limit: 1, ..s.clone() }).unwrap();
    assert_eq!((page2.0[0].message_id, page2.1), (old, 2));
}

#[test]
fn edits_and_deletions_and_the_recorded_position_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let conv = ConversationId::new();
    let id = MessageId::new();
    let doc = |text: &str| Change::Replace(message(id, conv, NOW, text));
    let find = |index: &SearchIndex, q: &str| {
        let terms = parse(q).unwrap().terms;
        index.search(&plain(&terms, &[conv])).unwrap().1
    };
    {
        let index = SearchIndex::open(dir.path()).unwrap();
        assert_eq!(index.position(), 0);
        index.apply(&[doc("原来的内容")]).unwrap();
        index.commit(10).unwrap();
        assert_eq!(find(&index, "原来"), 1);
        index.apply(&[doc("修改后的内容")]).unwrap();
        index.commit(11).unwrap();
        assert_eq!((find(&index, "原来"), find(&index, "修改")), (0, 1));
    }
    let index = SearchIndex::open(dir.path()).unwrap();
    assert_eq!((index.position(), index.len()), (11, 1));
    index.apply(&[Change::Remove(id)]).unwrap();
    index.commit(12).unwrap();
    assert_eq!(find(&index, "修改"), 0);
    assert!(index.is_empty());
}

/// A rebuild's progress survives reopening; while it is under way the index claims no
/// position; a finished one records its head.
#[test]
fn a_rebuild_in_progress_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let conv = ConversationId::new();
    let id = MessageId::new();
    {
        let index = SearchIndex::open(dir.path()).unwrap();
        assert_eq!(index.rebuild_progress(), None);
        index.apply(&[Change::Add(message(id, conv, NOW, "重建中的消息"))]).unwrap();
        index.commit_rebuild_progress(42, &id.0.to_string()).unwrap();
    }
    let index = SearchIndex::open(dir.path()).unwrap();
    assert_eq!(index.rebuild_progress(), Some((42, id.0.to_string())));
    assert_eq!((index.position(), index.len()), (-1, 1));
    index.commit(42).unwrap();
    assert_eq!((index.rebuild_progress(), index.position()), (None, 42));
}

#[test]
fn changes_apply_in_order_within_one_commit() {
    let index = SearchIndex::in_memory().unwrap();
    let conv = ConversationId::new();
    let (a, b) = (MessageId::new(), MessageId::new());
    let doc = |id, text: &str| message(id, conv, NOW, text);
    // A new message edited and another sent then deleted before the index commits.
    index
        .apply(&[
            Change::Add(doc(a, "初稿 draft")),
            Change::Add(doc(b, "发错了 oops")),
            Change::Replace(doc(a, "定稿 final")),
            Change::Remove(b),
        ])
        .unwrap();
    index.commit(4).unwrap();
    let find = |q: &str| index.search(&plain(&parse(q).unwrap().terms, &[conv])).unwrap().1;
    assert_eq!((find("初稿"), find("draft"), find("定稿"), find("final"), find("oops")), (0, 0, 1, 1, 0));
    assert_eq!((index.len(), index.position()), (1, 4));
    // Replaying an event already indexed (after a restart) keeps one copy.
    index.apply(&[Change::Replace(doc(a, "定稿 final"))]).unwrap();
    index.commit(5).unwrap();
    assert_eq!((find("定稿"), index.len()), (1, 1));
}

#[test]
fn pages_cover_every_allowed_match_once_best_first() {
    let index = SearchIndex::in_memory().unwrap();
    let (mine, theirs) = (ConversationId::new(), ConversationId::new());
    let mut expected = std::collections::HashSet::new();
    // Several commits make several segments; ages and lengths vary the scores.
    for round in 0..3i64 {
        let mut changes = Vec::new();
        for i in 0..100i64 {
            let id = MessageId::new();
            let conversation = if i % 3 == 0 { theirs } else { mine };
            if conversation == mine {
                expected.insert(id);
            }
            let text = format!("周报{} {}", "。".repeat((i % 7) as usize), "补充".repeat((i % 5) as usize));
            changes.push(Change::Add(message(id, conversation, NOW - ((round * 100 + i) % 41) * DAY, &text)));
        }
        index.apply(&changes).unwrap();
        index.commit(round + 1).unwrap();
    }
    let terms = parse("周报").unwrap().terms;
    let convs = [mine];
    let (mut seen, mut scores) = (Vec::new(), Vec::new());
    for page in 0.. {
        let (hits, total) = index.search(&Search { offset: page * 7, limit: 7, ..plain(&terms, &convs) }).unwrap();
        assert_eq!(total, expected.len());
        if hits.is_empty() {
            break;
        }
        seen.extend(hits.iter().map(|h| h.message_id));
        scores.extend(hits.iter().map(|h| h.score));
    }
    assert_eq!(seen.len(), expected.len());
    assert_eq!(seen.iter().copied().collect::<std::collections::HashSet<_>>(), expected);
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "best first: {scores:?}");
}

#[test]
fn snippets_mark_the_matches() {
    let terms = parse("上海 deadline").unwrap().terms;
    let (s, ranges) = snippet("我们在上海市见面, the Deadline is near", &terms, 100);
    let marked: Vec<&str> = ranges.iter().map(|&(a, b)| &s[a..b]).collect();
    assert_eq!(marked, ["上海", "Deadline"]);
    let long = format!("{}关键字{}", "前".repeat(200), "后".repeat(200));
    let (s, ranges) = snippet(&long, &parse("关键字").unwrap().terms, 40);
    assert!(s.starts_with('…') && s.ends_with('…') && s.chars().count() <= 42);
    assert_eq!(&s[ranges[0].0..ranges[0].1], "关键字");
}

/// A query that repeats a word a hundred times over a long text of that word: each distinct
/// word is looked for once, and marks never overlap (this took minutes of a core per hit when
/// every repeat was a needle checked against every mark so far).
#[test]
fn snippets_of_repeated_words_over_long_texts_stay_cheap() {
    let text = "的".repeat(10_000);
    let query = vec!["的"; 99].join(" ");
    let (s, ranges) = snippet(&text, &parse(&query).unwrap().terms, 160);
    assert_eq!(ranges.len(), 160, "every character in the window marked once");
    assert!(ranges.windows(2).all(|w| w[0].1 <= w[1].0), "no overlaps");
    assert!(s.chars().count() <= 162);
    // Many different words (a query holds up to 200 characters): at most 64 are looked for.
    let words: Vec<String> = (0..90).map(|i| format!("w{i:02}")).collect();
    let text = words.join(" ");
    let terms: Vec<_> = words.iter().flat_map(|w| parse(w).unwrap().terms).collect();
    let (_, ranges) = snippet(&text, &terms, 10_000);
    assert_eq!(ranges.len(), 64);
    // Among needles of one length, the query's order decides which marks first.
    let (s, ranges) = snippet("会议程", &parse("议程 会议").unwrap().terms, 100);
    assert_eq!(&s[ranges[0].0..ranges[0].1], "议程");
}

/// Each of `texts` in one conversation; `find` answers with the texts a query finds.
fn small_corpus(texts: &'static [&'static str]) -> impl Fn(&str) -> Vec<&'static str> {
    let find = ranked_corpus(texts);
    move |q: &str| {
        let mut found = find(q);
        found.sort();
        found
    }
}

/// As [`small_corpus`], best first: the later a text in `texts`, the older it is (a minute
/// apart, so recency hardly weighs).
fn ranked_corpus(texts: &'static [&'static str]) -> impl Fn(&str) -> Vec<&'static str> {
    let index = SearchIndex::in_memory().unwrap();
    let conversation = ConversationId::new();
    let ids: Vec<(MessageId, &'static str)> = texts.iter().map(|t| (MessageId::new(), *t)).collect();
    let docs: Vec<Change> = (ids.iter().enumerate())
        .map(|(i, (id, t))| Change::Add(message(*id, conversation, NOW - i as i64 * 60_000, t)))
        .collect();
    index.apply(&docs).unwrap();
    index.commit(1).unwrap();
    move |q: &str| {
        let terms = parse(q).unwrap().terms;
        let (hits, _) = index.search(&Search { limit: 100, ..plain(&terms, &[conversation]) }).unwrap();
        hits.iter().map(|h| ids.iter().find(|(id, _)| *id == h.message_id).unwrap().1).collect()
    }
}

#[test]
fn full_width_and_traditional_text_is_found_as_typed_either_way() {
    let find = small_corpus(&[
        "ＰＰＴ已经做好了，请查收",
        "会议定在２０２６年３月１５日",
        "會議改到明天，電子郵件已發",
        "2026年3月15日开会",
        "张伟的报告",
    ]);
    assert_eq!(find("PPT"), ["ＰＰＴ已经做好了，请查收"]);
    assert_eq!(find("ｐｐｔ"), ["ＰＰＴ已经做好了，请查收"]);
    assert_eq!(find("2026"), ["2026年3月15日开会", "会议定在２０２６年３月１５日"]);
    assert_eq!(find("３月１５日"), ["2026年3月15日开会", "会议定在２０２６年３月１５日"]);
    assert_eq!(find("会议"), ["会议定在２０２６年３月１５日", "會議改到明天，電子郵件已發"]);
    assert_eq!(find("會議"), find("会议"));
    assert_eq!(find("电子邮件"), ["會議改到明天，電子郵件已發"]);
    assert_eq!(find("\"电子邮件已发\""), ["會議改到明天，電子郵件已發"], "a phrase across folded characters");
    assert_eq!(find("張偉"), ["张伟的报告"]);
    assert_eq!(find("报告　张伟"), ["张伟的报告"], "the ideographic space separates words");
    // The query's filters read full-width too.
    assert_eq!(parse("ｆｒｏｍ：lilei 会议").unwrap().from.as_deref(), Some("lilei"));
}

#[test]
fn a_word_of_letters_and_digits_is_found_by_either_part() {
    let find = small_corpus(&["请把 iPhone15 的测试报告发我", "5G网络已覆盖", "Q3季度报告已经发出"]);
    assert_eq!(find("iphone"), ["请把 iPhone15 的测试报告发我"]);
    assert_eq!(find("iPhone15"), ["请把 iPhone15 的测试报告发我"]);
    assert_eq!(find("iphone 15"), ["请把 iPhone15 的测试报告发我"], "two words");
    assert_eq!(find("\"iPhone15 的测试报告\""), ["请把 iPhone15 的测试报告发我"], "phrases keep the word whole");
    assert_eq!(find("5g"), ["5G网络已覆盖"]);
    assert_eq!(find("Q3"), ["Q3季度报告已经发出"]);
    assert!(find("iphone16").is_empty());
}

#[test]
fn snippets_mark_folded_matches_in_the_original_text() {
    let (s, ranges) = snippet("會議改到明天，ＰＰＴ在附件", &parse("会议 ppt").unwrap().terms, 100);
    let marked: Vec<&str> = ranges.iter().map(|&(a, b)| &s[a..b]).collect();
    assert_eq!(marked, ["會議", "ＰＰＴ"]);
}

#[test]
fn words_typed_together_are_found_apart_and_rank_after_the_whole() {
    let find = ranked_corpus(&[
        "第三季度的销售报告已经上传",
        "服务器迁移计划：数据库先迁移",
        "Wi-Fi密码改成了新的",
        "这个bug已经修复了",
        "总部大楼B座三楼",
        "季度报告明天交",
        "报告里提到了下个季度",
        "数据迁移已完成",
    ]);
    let found = find("季度报告");
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(found[0], "季度报告明天交", "the whole first");
    assert!(found.contains(&"第三季度的销售报告已经上传") && found.contains(&"报告里提到了下个季度"));
    assert_eq!(find("数据库迁移"), ["服务器迁移计划：数据库先迁移"]);
    assert_eq!(find("WiFi密码"), ["Wi-Fi密码改成了新的"]);
    assert_eq!(find("bug修复"), ["这个bug已经修复了"]);
    assert_eq!(find("B座"), ["总部大楼B座三楼"], "a text cut otherwise still matches whole");
    // A phrase does not come apart.
    assert_eq!(find("\"季度报告\""), ["季度报告明天交"]);
    assert!(find("季度迁移").is_empty(), "every part must be there");
}

/// Terms mixing digits or letters with CJK characters are found inside texts the segmenter
/// cut otherwise (3月底 is 3 / 月底, 1日前 has 日前), and only where they are in a row.
#[test]
fn digits_and_letters_next_to_chinese_characters() {
    let find = small_corpus(&[
        "3月底交付第一版",
        "5月1日前完成验收",
        "2024Q3营收增长",
        "用K8s部署到生产",
        "第3个人在月底离职",
        "下週這裡見，關於遊戲的事",
    ]);
    assert_eq!(find("3月"), ["3月底交付第一版"]);
    assert_eq!(find("5月1日"), ["5月1日前完成验收"]);
    assert_eq!(find("1日"), ["5月1日前完成验收"]);
    assert_eq!(find("Q3营收"), ["2024Q3营收增长"]);
    assert_eq!(find("k8s部署"), ["用K8s部署到生产"]);
    assert!(find("3月1日").is_empty(), "every place the two meet must be there");
    assert!(find("4月").is_empty());
    assert_eq!(find("下周 这里"), ["下週這裡見，關於遊戲的事"]);
    assert_eq!(find("关于游戏"), ["下週這裡見，關於遊戲的事"]);
    let find = small_corpus(&["明天\u{200b}会\u{200b}议取消", "会 议"]);
    assert_eq!(find("会议"), ["明天\u{200b}会\u{200b}议取消"], "invisible characters do not cut a run");
    let find = small_corpus(&["Meet at the Café in Zürich", "Běijīng office"]);
    assert_eq!(find("cafe zurich"), ["Meet at the Café in Zürich"]);
    assert_eq!(find("café"), ["Meet at the Café in Zürich"]);
    assert_eq!(find("beijing"), ["Běijīng office"]);
    let find = small_corpus(&["Q3营收增长了10%", "下午10点开会", "增长了 10 个百分点"]);
    assert_eq!(find("10%"), ["Q3营收增长了10%"]);
    let find = small_corpus(&["@张伟明天来一下", "张伟和李娜明天出差", "【紧急】服务器宕机"]);
    let mut named = find("@张伟");
    named.sort();
    assert_eq!(named, ["@张伟明天来一下", "张伟和李娜明天出差"], "jieba cuts 张伟明 / 天来: the characters find it");
    assert_eq!(find("张伟、李娜"), ["张伟和李娜明天出差"]);
    assert_eq!(find("【紧急】"), ["【紧急】服务器宕机"]);
    // Best first, the newer text first in each list: the better match wins over recency.
    const LONG: &str = "could someone please take a careful look at my pull request before the release today";
    let find = ranked_corpus(&["pull, then request", LONG]);
    assert_eq!(find("pull request"), [LONG, "pull, then request"]);
    let find = ranked_corpus(&["全部门店都要检查", "部门会议改到周三"]);
    assert_eq!(find("部门"), ["部门会议改到周三", "全部门店都要检查"], "the word before a straddle");
    let find = small_corpus(&["我会C++和Java", "C盘满了", "C# 和 .NET"]);
    assert_eq!(find("C++"), ["我会C++和Java"]);
    assert_eq!(find("c#"), ["C# 和 .NET"]);
}

#[test]
fn other_spellings_of_words_and_numbers() {
    let find = small_corpus(&[
        "请用e-mail通知合作伙伴",
        "The follow-up is on Monday",
        "每台1,299元，共12,000,000元预算",
        "满意度92%",
        "新版本v2.3.1已发布",
        "email me the WiFi code",
        "升级到 iOS 17 之后",
        "MP 4 号会议室",
    ]);
    assert_eq!(find("email"), ["email me the WiFi code", "请用e-mail通知合作伙伴"]);
    assert_eq!(find("e-mail"), ["email me the WiFi code", "请用e-mail通知合作伙伴"]);
    assert_eq!(find("wi-fi"), ["email me the WiFi code"]);
    assert_eq!(find("followup"), ["The follow-up is on Monday"]);
    assert_eq!(find("1299"), ["每台1,299元，共12,000,000元预算"]);
    assert_eq!(find("1,299"), ["每台1,299元，共12,000,000元预算"]);
    assert_eq!(find("12000000"), ["每台1,299元，共12,000,000元预算"]);
    assert_eq!(find("92%"), ["满意度92%"]);
    assert_eq!(find("2.3"), ["新版本v2.3.1已发布"]);
    assert_eq!(find("2.3.1"), ["新版本v2.3.1已发布"]);
    assert_eq!(find("v2.3.1"), ["新版本v2.3.1已发布"]);
    assert!(find("2.4").is_empty() && find("299").len() == 1);
    assert_eq!(find("ios17"), ["升级到 iOS 17 之后"], "letters and digits typed together");
    assert!(find("mp4").is_empty(), "a one- or two-character run would find too much; not loosened");
    let find = small_corpus(&["PROJ-1024 已修复", "2024-05-01发布新版", "k8s-prod-01 重启了"]);
    assert_eq!(find("1024"), ["PROJ-1024 已修复"]);
    assert_eq!(find("proj-1024"), ["PROJ-1024 已修复"]);
    assert_eq!(find("2024"), ["2024-05-01发布新版"]);
    assert_eq!(find("2024-05-01"), ["2024-05-01发布新版"]);
    assert_eq!(find("prod"), ["k8s-prod-01 重启了"]);
    assert_eq!(find("prod-01"), ["k8s-prod-01 重启了"], "a code's tail");
    assert_eq!(find("05-01"), ["2024-05-01发布新版"], "a date's month and day");
    let find = small_corpus(&["变量名用 snake_case_name 吧"]);
    assert_eq!(find("snake_case"), ["变量名用 snake_case_name 吧"]);
    // A date written with slashes or hyphens, and a dotted name typed without its dot.
    let find = small_corpus(&[
        "截止日期 2024/5/1",
        "2024-06-01上线",
        "用 Node.js 写的",
        "版本 3.14 和 192.168.1.1，内存 1.5GB，一半是 1/2",
    ]);
    assert_eq!(find("2024-05-01"), ["截止日期 2024/5/1"]);
    assert_eq!(find("2024/6/1"), ["2024-06-01上线"]);
    assert_eq!(find("20240501"), ["截止日期 2024/5/1"]);
    assert_eq!(find("nodejs"), ["用 Node.js 写的"]);
    assert_eq!(find("node.js"), ["用 Node.js 写的"]);
    for number in ["314", "19216811", "15gb", "12"] {
        assert!(find(number).is_empty(), "numbers keep their dots and slashes: {number}");
    }
    let find = small_corpus(&["2024Q3营收增长", "iPhone15Pro 到货"]);
    assert_eq!(find("Q3"), ["2024Q3营收增长"]);
    assert_eq!(find("iphone15"), ["iPhone15Pro 到货"]);
    assert_eq!(find("15pro"), ["iPhone15Pro 到货"]);
}

#[test]
fn snippets_mark_the_parts_of_a_loosened_word() {
    let (s, ranges) = snippet("第三季度的销售报告", &parse("季度报告").unwrap().terms, 100);
    let marked: Vec<&str> = ranges.iter().map(|&(a, b)| &s[a..b]).collect();
    assert_eq!(marked, ["季度", "报告"]);
}

/// What the index found through another spelling is marked as the text writes it.
#[test]
fn snippets_mark_other_spellings_of_a_word() {
    for (text, query, expected) in [
        ("价格 1,299 元", "1299", "1,299"),
        ("2026-12-08 上线", "20261208", "2026-12-08"),
        ("2026-12-08 上线", "2026/12/8", "2026-12-08"),
        ("连 Wi-Fi 的密码", "wifi", "Wi-Fi"),
        ("WiFi密码忘了", "Wi-Fi", "WiFi"),
        ("用 Node.js 写", "nodejs", "Node.js"),
        ("send an e-mail.", "email", "e-mail"),
    ] {
        let (s, ranges) = snippet(text, &parse(query).unwrap().terms, 100);
        let marked: Vec<&str> = ranges.iter().map(|&(a, b)| &s[a..b]).collect();
        assert_eq!(marked, [expected], "{query} in {text}");
    }
}

#[test]
fn words_come_apart_only_when_the_whole_finds_little() {
    let corpus = |whole: usize| -> &'static [&'static str] {
        let mut texts = vec!["季度报告第 n 版"; whole];
        texts.push("第三季度的销售报告");
        Box::leak(texts.into_boxed_slice())
    };
    let few = small_corpus(corpus(qiao_search::LOOSEN_BELOW - 1));
    assert_eq!(few("季度报告").len(), qiao_search::LOOSEN_BELOW, "the whole finds little: the parts are added");
    let many = small_corpus(corpus(qiao_search::LOOSEN_BELOW));
    let found = many("季度报告");
    assert_eq!(found.len(), qiao_search::LOOSEN_BELOW, "the whole finds enough");
    assert!(!found.contains(&"第三季度的销售报告"));
}

#[test]
fn words_in_either_case_dates_spaced_phrases_symbols_and_long_words() {
    let find = small_corpus(&[
        "总部大楼B座三楼",
        "我的u盘坏了",
        "IP地址是多少",
        "5月3日开会",
        "3月5日上线",
        "季度 报告已上传",
        "季度报告明天交",
        "上线啦🎉",
        "fixed in e83c5163316f89bfbde7d9ab23ca2e25604af290",
    ]);
    // jieba's dictionary holds B座, U盘 and IP地址 in one case: any case finds them.
    assert_eq!(find("b座"), ["总部大楼B座三楼"]);
    assert_eq!(find("U盘"), ["我的u盘坏了"]);
    assert_eq!(find("u盘"), ["我的u盘坏了"]);
    assert_eq!(find("ip地址"), ["IP地址是多少"]);
    // The Latin part of such a word is a word too.
    let find_more = small_corpus(&[
        "加我qq号",
        "我的ip地址变了",
        "bug已经改好了",
        "会议室在3楼",
        "U盘好像坏了",
        "第3季度的销售报告",
    ]);
    assert_eq!(find_more("qq"), ["加我qq号"]);
    assert_eq!(find_more("ip"), ["我的ip地址变了"]);
    // Words typed together still come apart around a lone letter or digit.
    assert_eq!(find_more("改bug"), ["bug已经改好了"]);
    assert_eq!(find_more("3楼会议室"), ["会议室在3楼"]);
    assert_eq!(find_more("U盘坏了"), ["U盘好像坏了"]);
    assert_eq!(find_more("第3季度报告"), ["第3季度的销售报告"]);
    // A date is not its numbers and characters anywhere.
    assert_eq!(find("3月5日"), ["3月5日上线"]);
    assert_eq!(find("3月"), ["3月5日上线"]);
    // A quoted phrase typed with a space finds the text with or without it.
    let mut spaced = find("\"季度 报告\"");
    spaced.sort();
    assert_eq!(spaced, ["季度 报告已上传", "季度报告明天交"]);
    // A symbol or emoji in the query does not empty the results.
    let mut launched = find("上线 🎉");
    launched.sort();
    assert_eq!(launched, ["3月5日上线", "上线啦🎉"]);
    assert!(qiao_search::parse("🎉 ——").unwrap().is_empty(), "nothing searchable: an empty query");
    // A commit hash is one word.
    assert_eq!(find("e83c5163316f89bfbde7d9ab23ca2e25604af290"), ["fixed in e83c5163316f89bfbde7d9ab23ca2e25604af290"]);
}

#[test]
fn english_marks_whole_words_and_their_forms() {
    let marked = |text: &str, query: &str| {
        let (s, ranges) = snippet(text, &parse(query).unwrap().terms, 1000);
        ranges.iter().map(|&(a, b)| s[a..b].to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(marked("Please email the AI plan", "AI"), ["AI"], "not the ai in email");
    assert_eq!(marked("Meeting moved to Friday", "meetings"), ["Meeting"]);
    assert_eq!(marked("The meetings are moved", "meeting"), ["meetings"]);
    assert_eq!(marked("Two meetings today", "meet"), ["meetings"]);
    assert_eq!(marked("Project management", "manage"), ["management"]);
    assert_eq!(marked("The aim is clear", "ai"), Vec::<String>::new(), "a short word is not a prefix");
    assert_eq!(marked("Two cats", "cat"), ["cats"]);
    assert_eq!(marked("version v15 and 150", "15"), ["15"], "the digits of v15 (a word of their own), not of 150");
    assert_eq!(marked("iPhone15 到了", "iphone"), ["iPhone"]);
    assert_eq!(marked("我的u盘坏了", "U盘"), ["u盘"]);
    assert_eq!(marked("PPT明天改", "ppt"), ["PPT"]);
}

/// A word the segmenter finds inside a longer one is a word in a row with what follows the
/// longer one: 会议PPT is found in 视频会议PPT even when 50 other messages hold it exactly (so
/// the search is never loosened), and 视频会议PPT in a row ranks first.
#[test]
fn words_inside_longer_words_are_in_a_row_with_what_follows() {
    let mut texts = vec!["会议PPT"; 50];
    texts.extend(["视频会议PPT已发", "PPT明天改，会议取消", "视频 会议 PPT"]);
    let texts: &'static [&'static str] = Box::leak(texts.into_boxed_slice());
    let find = small_corpus(texts);
    let found = find("会议PPT");
    assert_eq!(found.len(), 52, "{found:?}");
    assert!(found.contains(&"视频会议PPT已发") && found.contains(&"视频 会议 PPT"), "words in a row, spaces or not");
    assert!(!found.contains(&"PPT明天改，会议取消"));
    // Found whole in fewer than 50, it is loosened into its words (视频会议 too), whole first.
    assert_eq!(ranked_corpus(texts)("视频会议PPT"), ["视频会议PPT已发", "视频 会议 PPT"]);
}

/// A burst of like messages (a bot's daily reports, sent a millisecond apart, committed in
/// several segments) pages through every match exactly once, newest first, whatever the
/// moment each page is asked for; and the same search gives the same order each time.
#[test]
fn pages_of_near_equal_matches_hold_each_once_in_a_stable_order() {
    let index = SearchIndex::in_memory().unwrap();
    let room = ConversationId::new();
    let start = NOW - NOW % 3_600_000;
    let mut sent = Vec::new();
    for batch in 0..3 {
        let docs: Vec<Change> = (0..19)
            .map(|i| {
                let n = batch * 19 + i;
                let id = MessageId::new();
                sent.push(id);
                Change::Add(message(id, room, start - 600_000 + n, &format!("第{n}号日报：今天完成了接口联调")))
            })
            .collect();
        index.apply(&docs).unwrap();
        index.commit(batch + 1).unwrap();
    }
    let terms = parse("日报").unwrap().terms;
    let rooms = [room];
    let page = |offset: usize, limit: usize, now: i64| {
        let (hits, total) = index.search(&Search { offset, limit, now, ..plain(&terms, &rooms) }).unwrap();
        assert_eq!(total, sent.len());
        hits.into_iter().map(|h| h.message_id).collect::<Vec<_>>()
    };
    let whole = page(0, 100, start + 1);
    let newest_first: Vec<MessageId> = sent.iter().rev().copied().collect();
    assert_eq!(whole, newest_first);
    for limit in [1, 5, 7] {
        let mut paged = Vec::new();
        for (k, offset) in (0..sent.len()).step_by(limit).enumerate() {
            // Each page asked for at another moment of the hour.
            paged.extend(page(offset, limit, start + 1 + 31_003 * k as i64));
        }
        assert_eq!(paged, whole, "pages of {limit}");
    }
}

/// A long word of the dictionary typed together is found written apart too, when few
/// messages hold it whole (人力资源 in 人力 资源, 项目管理 in 项目的管理), ranked after those
/// that do.
#[test]
fn long_dictionary_words_are_found_written_apart() {
    let texts: &'static [&'static str] =
        &["人力资源部门通知", "人力 资源 部门", "项目的管理很混乱", "视频的会议很卡", "会议　纪要 第二份", "资源回收"];
    let find = small_corpus(texts);
    assert_eq!(find("人力资源"), ["人力 资源 部门", "人力资源部门通知"]);
    assert_eq!(ranked_corpus(texts)("人力资源"), ["人力资源部门通知", "人力 资源 部门"], "whole first");
    assert_eq!(find("项目管理"), ["项目的管理很混乱"]);
    assert_eq!(find("视频会议"), ["视频的会议很卡"]);
    assert_eq!(find("会议纪要"), ["会议　纪要 第二份"]);
    assert_eq!(find("\"人力资源\""), ["人力资源部门通知"], "quoted, it never comes apart");
}

/// Part of a host name or address typed with its hyphen, and a version typed with its `v`.
#[test]
fn parts_of_addresses_and_versions_with_their_letter() {
    let texts: &'static [&'static str] = &[
        "访问 api.acme-corp.cn 获取文档",
        "support@qiao-corp.com 联系我们",
        "版本v2.3.1已发布",
        "app v10.4.2 crashed",
        "升级到 1.20.3",
    ];
    let find = small_corpus(texts);
    assert_eq!(find("acme-corp"), ["访问 api.acme-corp.cn 获取文档"]);
    assert_eq!(find("qiao-corp"), ["support@qiao-corp.com 联系我们"]);
    assert_eq!(find("v2.3"), ["版本v2.3.1已发布"]);
    assert_eq!(find("v10.4"), ["app v10.4.2 crashed"]);
    assert_eq!(find("v1.20"), ["升级到 1.20.3"]);
    assert!(find("v2.4").is_empty());
}
