//! Search over messages (and the names of the files they carry). A tantivy index with three
//! views of the text: words (jieba segmentation for Chinese, lower-cased and stemmed for
//! English), CJK character unigrams and CJK character bigrams. A query word matches as a
//! word or as a run of characters, so 上海 finds 上海分公司 and 上海市, and a name the
//! segmenter splits oddly is still found. The index is a derived projection of the store:
//! it records the last event position it holds, catches up from the event log, and can be
//! rebuilt from the messages at any time.

pub mod grams;
mod parts;
pub mod query;
mod rank;

use std::ops::Bound;
use std::path::Path;
use std::sync::Mutex;

use qiao_domain::{ConversationId, MessageId, Millis, UserId, fold};
use std::sync::Arc;

use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, Occur, PhraseQuery, Query as TQuery, RangeQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{Language, LowerCaser, RemoveLongFilter, Stemmer, TextAnalyzer};
use tantivy::{DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Score, TantivyDocument, Term};

use crate::grams::{CjkGrams, EdgeGrams, grams, is_cjk};
pub use crate::query::{Query, parse};

/// Bump when the schema or analysis changes: an index of another version is rebuilt.
pub const SCHEMA_VERSION: &str = "11";
/// Allowed conversations a filter-only search reads the postings of; with more, it walks
/// the documents the other filters give.
const FEW_CONVERSATIONS: usize = 64;
/// A commit payload's start while a rebuild is under way (then its head and last message).
const REBUILDING: &str = "rebuilding ";
/// The file in the index's directory that names the schema version it was built by.
const SCHEMA_MARKER: &str = "qiao-schema-version";
const WRITER_MEMORY: usize = 50 << 20;
/// Below this many matches of the words whole, a search is made again with words typed
/// without spaces matched by their parts ([`SearchIndex::search`]).
pub const LOOSEN_BELOW: usize = 50;
/// A page of ranked matches and how many match in all.
type RankedPage = (Vec<(Score, DocAddress)>, usize);
/// Fast fields the ranking collector (`rank.rs`) reads by name.
const CONVERSATION_FIELD: &str = "conversation";
const AT_FIELD: &str = "at";
/// Niceness of tantivy's indexing and merge threads: indexing is background work that must
/// yield the core to requests and deliveries (it catches up when the load falls).
const INDEXING_NICENESS: i32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("search index directory: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = SearchError> = std::result::Result<T, E>;

/// What is indexed of one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Doc {
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
    pub sender_id: UserId,
    pub created_at: Millis,
    /// The body and the names of its files.
    pub text: String,
    pub has_file: bool,
}

/// One change to the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A message the index cannot hold yet (a new one): no earlier version is looked for.
    Add(Doc),
    /// A message that may already be indexed (an edit, or an event replayed after a restart).
    Replace(Doc),
    /// A deleted message.
    Remove(MessageId),
}

/// A search and its limits. `conversations` are those the searcher may read (already
/// narrowed by `in:`); nothing else is ever returned.
#[derive(Clone, Debug)]
pub struct Search<'a> {
    pub terms: &'a [query::Term],
    pub conversations: &'a [ConversationId],
    /// Only messages from these people (`from:` may name several: people of one name);
    /// empty: from anyone.
    pub senders: &'a [UserId],
    pub has_file: bool,
    pub from_ms: Option<Millis>,
    pub to_ms: Option<Millis>,
    pub offset: usize,
    pub limit: usize,
    /// For the recency boost.
    pub now: Millis,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub message_id: MessageId,
    pub score: f32,
}

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    /// The conversation's id folded to 64 bits, as a fast field: the permission filter is
    /// checked per matching document instead of unioning every allowed conversation's
    /// postings. Also indexed, for searches of filters only (`in:#sales`, `from:`), which
    /// walk the allowed conversations' postings instead of every document.
    conversation: Field,
    sender: Field,
    at: Field,
    has_file: Field,
    words: Field,
    uni: Field,
    bi: Field,
    /// Three- and four-character runs as single terms: the commonest Chinese word lengths
    /// after two, matched without position checks.
    tri: Field,
    quad: Field,
    /// Where ASCII letters and digits meet CJK characters (`grams::edges`), for terms that
    /// mix them.
    edge: Field,
}

pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    f: Fields,
    words: TextAnalyzer,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = |tokenizer: &str, record: IndexRecordOption| {
        TextOptions::default()
            .set_indexing_options(TextFieldIndexing::default().set_tokenizer(tokenizer).set_index_option(record))
    };
    let f = Fields {
        id: b.add_text_field("id", STRING | STORED),
        conversation: b.add_u64_field(CONVERSATION_FIELD, FAST | INDEXED),
        sender: b.add_text_field("sender", STRING),
        at: b.add_i64_field(AT_FIELD, INDEXED | FAST),
        has_file: b.add_u64_field("has_file", INDEXED),
        words: b.add_text_field("words", text("qiao_words", IndexRecordOption::WithFreqsAndPositions)),
        uni: b.add_text_field("uni", text("qiao_uni", IndexRecordOption::WithFreqs)),
        bi: b.add_text_field("bi", text("qiao_bi", IndexRecordOption::WithFreqsAndPositions)),
        tri: b.add_text_field("tri", text("qiao_tri", IndexRecordOption::WithFreqs)),
        quad: b.add_text_field("quad", text("qiao_quad", IndexRecordOption::WithFreqs)),
        edge: b.add_text_field("edge", text("qiao_edge", IndexRecordOption::WithFreqs)),
    };
    (b.build(), f)
}

/// A conversation id folded to 64 bits (UUIDv7: the high half is mostly time, so both
/// halves are mixed).
fn fold(c: ConversationId) -> u64 {
    let (hi, lo) = c.0.as_u64_pair();
    hi ^ lo.rotate_left(29)
}

/// Longest word indexed, in bytes: a SHA-256 in hex (64) or a long URL is searched for as
/// typed; longer ones (encoded data) are left out of the index and of queries.
const MAX_WORD_BYTES: usize = 128;

/// The word analysis: `split_mixed` for the index (see [`grams::Words`]), not for queries.
fn words_analyzer(split_mixed: bool) -> TextAnalyzer {
    TextAnalyzer::builder(grams::Words { jieba: tantivy_jieba::JiebaTokenizer::new(), split_mixed })
        .filter(RemoveLongFilter::limit(MAX_WORD_BYTES))
        .filter(LowerCaser)
        .filter(Stemmer::new(Language::English))
        .build()
}

impl SearchIndex {
    /// Opens the index in `dir`, creating it (or recreating it, when it was built by another
    /// schema version: it is derived data).
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let marker = dir.join(SCHEMA_MARKER);
        let current = std::fs::read_to_string(&marker).ok();
        if current.as_deref().map(str::trim) != Some(SCHEMA_VERSION) {
            empty(dir)?;
        }
        let (schema, f) = schema();
        let directory = tantivy::directory::MmapDirectory::open(dir).map_err(tantivy::TantivyError::from)?;
        let index = Index::open_or_create(directory, schema)?;
        Self::with_index(index, f)
    }

    /// [`open`](Self::open), and if the index there cannot be read (files lost or damaged,
    /// say by a crash of the machine or a full disk) an empty one in its place, which the
    /// indexer refills from the store; the error says why it was replaced. An index another
    /// process has open is never touched: that stays an error.
    pub fn open_or_replace(dir: &Path) -> Result<(Self, Option<SearchError>)> {
        match Self::open(dir) {
            Err(SearchError::Index(e)) if !matches!(e, tantivy::TantivyError::LockFailure(..)) && !in_use(dir) => {
                empty(dir)?;
                Ok((Self::open(dir)?, Some(SearchError::Index(e))))
            }
            other => other.map(|index| (index, None)),
        }
    }

    /// An index in memory (tests).
    pub fn in_memory() -> Result<Self> {
        let (schema, f) = schema();
        Self::with_index(Index::create_in_ram(schema), f)
    }

    fn with_index(index: Index, f: Fields) -> Result<Self> {
        index.tokenizers().register("qiao_words", words_analyzer(true));
        index.tokenizers().register("qiao_uni", TextAnalyzer::builder(CjkGrams { n: 1 }).build());
        index.tokenizers().register("qiao_bi", TextAnalyzer::builder(CjkGrams { n: 2 }).build());
        index.tokenizers().register("qiao_tri", TextAnalyzer::builder(CjkGrams { n: 3 }).build());
        index.tokenizers().register("qiao_quad", TextAnalyzer::builder(CjkGrams { n: 4 }).build());
        index.tokenizers().register("qiao_edge", TextAnalyzer::builder(EdgeGrams).build());
        // tantivy's indexing, merge and compression threads inherit the niceness of the
        // thread that creates them.
        let writer = on_background_thread(|| index.writer_with_num_threads(1, WRITER_MEMORY))?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        Ok(SearchIndex { index, reader, writer: Mutex::new(writer), f, words: words_analyzer(false) })
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, IndexWriter> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies changes (visible to searches after the next [`commit`](Self::commit)). May
    /// block while tantivy's indexing thread catches up: call it off the async runtime.
    pub fn apply(&self, changes: &[Change]) -> Result<()> {
        let w = self.writer();
        for change in changes {
            match change {
                Change::Add(d) => {
                    w.add_document(self.document(d))?;
                }
                Change::Replace(d) => {
                    w.delete_term(self.id_term(d.message_id));
                    w.add_document(self.document(d))?;
                }
                Change::Remove(id) => {
                    w.delete_term(self.id_term(*id));
                }
            }
        }
        Ok(())
    }

    fn id_term(&self, id: MessageId) -> Term {
        Term::from_field_text(self.f.id, &id.to_string())
    }

    fn document(&self, d: &Doc) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        doc.add_text(self.f.id, d.message_id.to_string());
        doc.add_u64(self.f.conversation, fold(d.conversation_id));
        doc.add_text(self.f.sender, d.sender_id.to_string());
        doc.add_i64(self.f.at, d.created_at);
        doc.add_u64(self.f.has_file, u64::from(d.has_file));
        let text = fold::fold(&d.text);
        for field in [self.f.words, self.f.uni, self.f.bi, self.f.tri, self.f.quad, self.f.edge] {
            doc.add_text(field, &text);
        }
        doc
    }

    /// Removes everything (before a rebuild).
    pub fn clear(&self) -> Result<()> {
        self.writer().delete_all_documents()?;
        Ok(())
    }

    /// Makes what was added visible to searches and records that the index holds every
    /// event up to `position`.
    pub fn commit(&self, position: i64) -> Result<()> {
        self.commit_payload(position.to_string())
    }

    fn commit_payload(&self, payload: String) -> Result<()> {
        {
            let mut guard = self.writer();
            let w: &mut IndexWriter = &mut guard;
            // A commit starts tantivy's next indexing thread: from a background thread too.
            on_background_thread(|| -> Result<()> {
                let mut prepared = w.prepare_commit()?;
                prepared.set_payload(&payload);
                prepared.commit()?;
                Ok(())
            })?;
        }
        self.reader.reload()?;
        Ok(())
    }

    /// The event position of the last commit (0 for a new index, -1 while a rebuild is under
    /// way: no position is complete then).
    pub fn position(&self) -> i64 {
        match self.payload() {
            Some(p) if p.starts_with(REBUILDING) => -1,
            Some(p) => p.parse().unwrap_or(0),
            None => 0,
        }
    }

    /// Makes a rebuild's work so far durable: `head` is the position the rebuild will reach,
    /// `after` the last message it added (messages are added in id order), so a rebuild
    /// killed midway goes on from there ([`Self::rebuild_progress`]).
    pub fn commit_rebuild_progress(&self, head: i64, after: &str) -> Result<()> {
        self.commit_payload(format!("{REBUILDING}{head} {after}"))
    }

    /// Where an unfinished rebuild stopped: its head and the last message it added.
    pub fn rebuild_progress(&self) -> Option<(i64, String)> {
        let payload = self.payload()?;
        let (head, after) = payload.strip_prefix(REBUILDING)?.split_once(' ')?;
        Some((head.parse().ok()?, after.to_owned()))
    }

    /// The last commit's payload (a position, or a rebuild's progress).
    fn payload(&self) -> Option<String> {
        self.index.load_metas().ok()?.payload
    }

    /// Messages in the index.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A query text's words in a row: where the segmenter gives a long word with its shorter
    /// words at one position, the long word (the last given there).
    fn word_tokens(&self, text: &str) -> Vec<String> {
        let mut analyzer = self.words.clone();
        let mut stream = analyzer.token_stream(text);
        let mut out: Vec<(usize, String)> = Vec::new();
        while let Some(t) = tantivy::tokenizer::TokenStream::next(&mut stream) {
            if t.text.trim().is_empty() {
                continue;
            }
            match out.last_mut() {
                Some(last) if last.0 == t.position => last.1 = t.text.clone(),
                _ => out.push((t.position, t.text.clone())),
            }
        }
        out.into_iter().map(|(_, t)| t).collect()
    }

    /// One query word or phrase, as words or as CJK characters in a row
    /// ([`Self::strict_query`]). `loose`: an unquoted word also matches when each of its
    /// [`parts`] does (and ranks higher when it matches whole).
    fn term_query(&self, searcher: &tantivy::Searcher, term: &query::Term, loose: bool) -> Option<Box<dyn TQuery>> {
        let text = fold::fold(&term.text);
        let whole = self.strict_query(searcher, &text);
        let parts = if loose && !term.phrase { parts::parts(&text) } else { Vec::new() };
        // (One part may differ from the whole: v2.3 loosens into 2.3.)
        if !comes_apart(&parts, &text) {
            return whole;
        }
        let each: Vec<(Occur, Box<dyn TQuery>)> =
            parts.iter().filter_map(|p| self.strict_query(searcher, p)).map(|q| (Occur::Must, q)).collect();
        let each: Box<dyn TQuery> = Box::new(BooleanQuery::new(each));
        // Either: a text the segmenter cut otherwise (B座 as one word) still matches whole.
        Some(match whole {
            Some(whole) => Box::new(BooleanQuery::new(vec![
                (Occur::Should, each),
                (Occur::Should, Box::new(BoostQuery::new(whole, 2.0))),
            ])),
            None => each,
        })
    }

    /// Folded text that matches as words, or as CJK characters in a row.
    fn strict_query(&self, searcher: &tantivy::Searcher, text: &str) -> Option<Box<dyn TQuery>> {
        let mut alternatives: Vec<(Occur, Box<dyn TQuery>)> = Vec::new();
        let tokens = self.word_tokens(text);
        // Characters in a row: only when the text is CJK (spaces ignored for phrases; a
        // leading @ or # as in @张伟 or #销售 is not part of what is written).
        let cjk: String = text.trim_start_matches(['@', '#']).chars().filter(|c| !c.is_whitespace()).collect();
        let chars = (!cjk.is_empty() && cjk.chars().all(is_cjk)).then(|| self.chars_query(&cjk));
        // A phrase typed with spaces ("季度 报告") also matches as words in a row: the
        // characters' runs and grams stop at a text's spaces, the words' positions do not.
        let (chars, spaced) = match chars {
            Some(c) if tokens.len() > 1 && text.contains(char::is_whitespace) => (None, Some(c)),
            other => (other, None),
        };
        let boosted =
            |q: Box<dyn TQuery>| -> (Occur, Box<dyn TQuery>) { (Occur::Should, Box::new(BoostQuery::new(q, 2.0))) };
        match tokens.len() {
            0 => {}
            // A word of several CJK characters that the segmenter keeps whole: its run of
            // characters finds the same texts (plus the rare ones where the run straddles two
            // words), and scoring the word's list as well nearly doubled the cost of such a
            // query. A single character keeps the word: as a word of its own it is far rarer
            // than as a character inside others, so the boost tells them apart.
            // Unless the word is much rarer than its characters in a row (部门 in 全部门店,
            // 周一 in 下周一起: runs straddling two words are common): then it tells the
            // word from the straddles, and its list is short.
            1 if chars.is_some() && tokens[0] == cjk && cjk.chars().nth(1).is_some() => {
                alternatives
                    .extend(self.word_is_selective(searcher, &cjk).then(|| boosted(self.words_in_a_row(&tokens))));
            }
            1 => alternatives.push(boosted(self.words_in_a_row(&tokens))),
            // Several words make a phrase, unless the characters in a row already find every
            // such text: checking the words' positions in every message holding a common
            // word costs far more than the boost is worth.
            _ if chars.is_none() => alternatives.push(boosted(self.words_in_a_row(&tokens))),
            _ => {}
        }
        // e-mail also finds email, and 1,299 finds 1299 (the index holds both forms of the
        // text's words: `grams::Words`).
        if let [joined] = grams::joined(text).map(|j| self.word_tokens(&j)).unwrap_or_default().as_slice() {
            alternatives.push(boosted(Box::new(TermQuery::new(
                Term::from_field_text(self.f.words, joined),
                IndexRecordOption::WithFreqs,
            ))));
        }
        if let Some(spaced) = spaced {
            alternatives.push((Occur::Should, spaced));
        }
        if let Some(mixed) = self.mixed_query(text) {
            alternatives.push((Occur::Should, mixed));
        }
        match chars {
            // Every text holding the word holds its characters in a row: those decide what
            // matches (one list to walk), the word only adds to the score.
            Some(chars) => {
                alternatives.push((Occur::Must, chars));
                Some(Box::new(BooleanQuery::new(alternatives)))
            }
            None if alternatives.is_empty() => None,
            None => Some(Box::new(BooleanQuery::new(alternatives))),
        }
    }

    /// A term made of CJK characters and ASCII letters or digits only, with both (3月,
    /// 5月1日, Q3营收), by what it is made of: each CJK run's characters in a row and each
    /// place where the two meet (`grams::edges`). The segmenter cuts such text by its
    /// dictionary (3月底 as 3 / 月底), so its words alone miss texts the term is part of.
    fn mixed_query(&self, text: &str) -> Option<Box<dyn TQuery>> {
        let made_of = |c: char| is_cjk(c) || c.is_ascii_alphanumeric();
        if !text.chars().all(made_of) || !text.chars().any(is_cjk) || !text.chars().any(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        // A run too long for edge grams (a hash) would go unchecked: leave such terms to words.
        if grams::ascii_runs(text).any(|(start, end)| end - start > grams::EDGE_RUN_MAX) {
            return None;
        }
        let edges = grams::edges(text);
        if edges.is_empty() {
            return None;
        }
        let mut must: Vec<(Occur, Box<dyn TQuery>)> = grams::cjk_runs(text)
            .into_iter()
            .map(|(_, run)| (Occur::Must, self.chars_query(&run.iter().map(|(_, c)| *c).collect::<String>())))
            .collect();
        for (g, _, _) in edges {
            let term = Term::from_field_text(self.f.edge, &g);
            must.push((Occur::Must, Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs))));
        }
        Some(Box::new(BooleanQuery::new(must)))
    }

    /// Whether a CJK word of two to four characters is in clearly fewer messages as a word
    /// than as characters in a row (at most 80 %).
    fn word_is_selective(&self, searcher: &tantivy::Searcher, word: &str) -> bool {
        let field = match word.chars().count() {
            2 => self.f.bi,
            3 => self.f.tri,
            4 => self.f.quad,
            _ => return false,
        };
        let as_word = searcher.doc_freq(&Term::from_field_text(self.f.words, word)).unwrap_or(u64::MAX);
        let in_a_row = searcher.doc_freq(&Term::from_field_text(field, word)).unwrap_or(0);
        as_word.saturating_mul(5) <= in_a_row.saturating_mul(4)
    }

    /// Unquoted words given apart (`pull request`, `季度 报告`) also as a phrase, for the score
    /// only: messages holding them next to each other rank first.
    fn adjacent_bonus(&self, terms: &[query::Term]) -> Option<Box<dyn TQuery>> {
        if !(2..=4).contains(&terms.len()) || terms.iter().any(|t| t.phrase) {
            return None;
        }
        let words: Vec<String> = terms.iter().flat_map(|t| self.word_tokens(&fold::fold(&t.text))).collect();
        if !(2..=8).contains(&words.len()) {
            return None;
        }
        Some(Box::new(BoostQuery::new(self.words_in_a_row(&words), 3.0)))
    }

    /// Words in a row: one word's term, or a phrase.
    fn words_in_a_row(&self, words: &[String]) -> Box<dyn TQuery> {
        let mut terms: Vec<Term> = words.iter().map(|t| Term::from_field_text(self.f.words, t)).collect();
        if terms.len() == 1 {
            Box::new(TermQuery::new(terms.remove(0), IndexRecordOption::WithFreqs))
        } else {
            Box::new(PhraseQuery::new(terms))
        }
    }

    /// CJK characters in a row (whitespace removed): one term of the field holding runs of
    /// that length, or a phrase of bigrams for longer runs.
    fn chars_query(&self, cjk: &str) -> Box<dyn TQuery> {
        let field = match cjk.chars().count() {
            1 => Some(self.f.uni),
            3 => Some(self.f.tri),
            4 => Some(self.f.quad),
            _ => None,
        };
        if let Some(field) = field {
            return Box::new(TermQuery::new(Term::from_field_text(field, cjk), IndexRecordOption::WithFreqs));
        }
        let mut bigrams: Vec<Term> =
            grams(cjk, 2).into_iter().map(|(g, _, _)| Term::from_field_text(self.f.bi, &g)).collect();
        if bigrams.len() == 1 {
            Box::new(TermQuery::new(bigrams.remove(0), IndexRecordOption::WithFreqs))
        } else {
            Box::new(PhraseQuery::new(bigrams))
        }
    }

    /// Searches: every term must match; only the given conversations; newest weigh more.
    /// Returns the page of hits and how many match in all.
    ///
    /// Words are first matched whole. When that finds fewer than [`LOOSEN_BELOW`] messages
    /// and a word typed without spaces can come apart ([`parts`]), the search is made again
    /// with its parts matched apart (the whole still ranking first): loose matching is for
    /// when the whole finds little, and a word common in a row (视频会议 in a busy company)
    /// keeps the cost of one lookup. The threshold depends on the query and the messages
    /// only, not on the page, so pages of one search agree.
    pub fn search(&self, s: &Search<'_>) -> Result<(Vec<Hit>, usize)> {
        if s.conversations.is_empty() || s.limit == 0 {
            return Ok((Vec::new(), 0));
        }
        let searcher = self.reader.searcher();
        let mut found = self.ranked(&searcher, s, false)?;
        let loosens = || {
            s.terms.iter().any(|t| {
                let text = fold::fold(&t.text);
                !t.phrase && comes_apart(&parts::parts(&text), &text)
            })
        };
        if found.as_ref().is_none_or(|(_, total)| *total < LOOSEN_BELOW) && loosens() {
            found = self.ranked(&searcher, s, true)?;
        }
        let Some((found, total)) = found else { return Ok((Vec::new(), 0)) };
        let mut hits = Vec::with_capacity(found.len());
        for (score, address) in found {
            if let Some(id) = self.stored_id(&searcher, address)? {
                hits.push(Hit { message_id: id, score });
            }
        }
        Ok((hits, total))
    }

    /// The page of matches and their number; `None` when a term can match nothing.
    fn ranked(&self, searcher: &tantivy::Searcher, s: &Search<'_>, loose: bool) -> Result<Option<RankedPage>> {
        let mut clauses: Vec<(Occur, Box<dyn TQuery>)> = Vec::new();
        for t in s.terms {
            match self.term_query(searcher, t, loose) {
                Some(q) => clauses.push((Occur::Must, q)),
                None => return Ok(None),
            }
        }
        if clauses.is_empty() {
            // Filters only. A few allowed conversations (`in:`): their documents, not the
            // whole index. Many (staff read every public channel): reading all their postings
            // up front would cost more than the other filters' lists, which then drive.
            let query: Box<dyn TQuery> = if s.conversations.len() <= FEW_CONVERSATIONS {
                let allowed = s.conversations.iter().map(|c| Term::from_field_u64(self.f.conversation, fold(*c)));
                Box::new(TermSetQuery::new(allowed))
            } else {
                Box::new(AllQuery)
            };
            clauses.push((Occur::Must, query));
        }
        if !s.senders.is_empty() {
            let anyone: Vec<(Occur, Box<dyn TQuery>)> = s
                .senders
                .iter()
                .map(|u| {
                    let term = Term::from_field_text(self.f.sender, &u.to_string());
                    (Occur::Should, Box::new(TermQuery::new(term, IndexRecordOption::Basic)) as Box<dyn TQuery>)
                })
                .collect();
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(anyone))));
        }
        if s.has_file {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(Term::from_field_u64(self.f.has_file, 1), IndexRecordOption::Basic)),
            ));
        }
        if s.from_ms.is_some() || s.to_ms.is_some() {
            let lower = s.from_ms.map_or(Bound::Unbounded, |v| Bound::Included(Term::from_field_i64(self.f.at, v)));
            let upper = s.to_ms.map_or(Bound::Unbounded, |v| Bound::Excluded(Term::from_field_i64(self.f.at, v)));
            clauses.push((Occur::Must, Box::new(RangeQuery::new(lower, upper))));
        }
        if let Some(bonus) = self.adjacent_bonus(s.terms) {
            clauses.push((Occur::Should, bonus));
        }
        let query = BooleanQuery::new(clauses);
        let ranked = rank::Ranked {
            allowed: Arc::new(s.conversations.iter().map(|c| fold(*c)).collect()),
            offset: s.offset,
            limit: s.limit,
            now: rank::ranking_clock(s.now),
        };
        Ok(Some(searcher.search(&query, &ranked)?))
    }

    fn stored_id(&self, searcher: &tantivy::Searcher, address: DocAddress) -> Result<Option<MessageId>> {
        let doc: TantivyDocument = searcher.doc(address)?;
        Ok(doc.get_first(self.f.id).and_then(|v| v.as_str()).and_then(|s| s.parse().ok()))
    }
}

/// Empties `dir` and marks it as holding this schema version.
fn empty(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    std::fs::write(dir.join(SCHEMA_MARKER), SCHEMA_VERSION)?;
    Ok(())
}

/// Whether a process holds the index's writer lock (tantivy takes it with `flock`).
fn in_use(dir: &Path) -> bool {
    match std::fs::File::open(dir.join(".tantivy-writer.lock")) {
        Ok(file) => file.try_lock().is_err(),
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}

/// Runs `f` on a new thread of lowered priority, so that the threads it starts (they inherit
/// their creator's niceness on Linux) run in the core's spare time.
fn on_background_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            // Best effort: at worst indexing competes with requests at normal priority.
            let _ = rustix::process::nice(INDEXING_NICENESS);
            f()
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Different words (and parts of words) of a query a snippet looks for, at most.
const SNIPPET_NEEDLES_MAX: usize = 64;

/// Where a match of `needle` at character `k` of `hay` ends, or `None` when it is not a match
/// to mark. Latin letters and digits are matched as the index cuts them (a run of letters
/// and a run of digits are words apart, iphone in iPhone15, 15 in v15): a needle may not
/// start inside a run (AI is not the ai in email) nor end inside a run of digits (15 is not
/// in 150), and one ending inside a word of letters takes in the rest of it when it is at
/// least [`STEM_MIN`] letters long or the rest is a plural's s (meet marks Meetings, cat
/// marks cats, ai does not mark aim).
fn word_end(hay: &[(usize, char)], needle: &[char], k: usize) -> Option<usize> {
    let same_run = |a: char, b: char| {
        a.is_ascii_alphabetic() && b.is_ascii_alphabetic() || a.is_ascii_digit() && b.is_ascii_digit()
    };
    if let (Some(&first), Some(&(_, before))) = (needle.first(), k.checked_sub(1).and_then(|p| hay.get(p)))
        && same_run(before, first)
    {
        return None;
    }
    let end = k + needle.len();
    let (Some(&last), Some(&(_, after))) = (needle.last(), hay.get(end)) else { return Some(end) };
    if !same_run(last, after) {
        return Some(end);
    }
    if last.is_ascii_digit() {
        return None;
    }
    let suffix = hay[end..].iter().take_while(|&&(_, c)| c.is_ascii_alphabetic()).count();
    let plural = suffix == 1 && hay[end].1 == 's';
    (plural || needle.len() >= STEM_MIN).then_some(end + suffix)
}

/// Letters from which a needle is taken for a stem (manag marks management).
const STEM_MIN: usize = 4;

/// The stem of an English word of at least four letters, when it differs.
fn english_stem(stemmer: &mut TextAnalyzer, word: &[char]) -> Option<Vec<char>> {
    if word.len() < STEM_MIN || !word.iter().all(char::is_ascii_alphabetic) {
        return None;
    }
    let text: String = word.iter().collect();
    let mut stream = stemmer.token_stream(&text);
    let stem = tantivy::tokenizer::TokenStream::next(&mut stream)?.text.clone();
    (stem.len() >= 3 && stem != text).then(|| stem.chars().collect())
}

/// Highlights where the query's words occur in `text`: a window of about `width` characters
/// around the first match, with the matched ranges (byte offsets into the returned snippet).
/// Matching ignores case and what [`fold`] folds (so 会议 marks 會議), one character of the
/// text for one of the query.
/// Whether a word's loosened `parts` differ from the word itself (one part may: v2.3 → 2.3).
fn comes_apart(parts: &[String], word: &str) -> bool {
    match parts {
        [] => false,
        [one] => one != word,
        _ => true,
    }
}

/// The runs of ASCII letters and digits in `text` joined by `,` `.` `-` `/` `_` (`1,299`,
/// `Wi-Fi`, `2026-12-08`, `Node.js`), as byte ranges, without punctuation at their ends.
fn spelled_words(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let inner = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b',' | b'.' | b'-' | b'/' | b'_');
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && inner(b[i]) {
            i += 1;
        }
        let mut end = i;
        while end > start && !b[end - 1].is_ascii_alphanumeric() {
            end -= 1;
        }
        out.push((start, end));
    }
    out
}

pub fn snippet(text: &str, terms: &[query::Term], width: usize) -> (String, Vec<(usize, usize)>) {
    let key = |c: char| {
        let c = fold::fold_char(c);
        c.to_lowercase().next().unwrap_or(c)
    };
    let hay: Vec<(usize, char)> = text.char_indices().map(|(i, c)| (i, key(c))).collect();
    let byte_at = |k: usize| hay.get(k).map_or(text.len(), |&(i, _)| i);
    let mut needles: Vec<Vec<char>> = Vec::new();
    for t in terms {
        if t.phrase {
            needles.push(t.text.chars().map(key).collect());
        }
        for w in t.text.split_whitespace() {
            needles.push(w.chars().map(key).collect());
        }
        // A loosened word's parts, where the whole is not found (longer needles go first).
        if !t.phrase {
            needles.extend(parts::parts(&fold::fold(&t.text)).iter().map(|p| p.chars().map(key).collect()));
        }
    }
    // A word of the text the index matched through another spelling (1,299 for 1299, Wi-Fi
    // for wifi, 2026-12-08 for 20261208, Node.js for nodejs): marked as it is written.
    let forms = |w: &str| {
        let w = w.to_lowercase();
        let joined = grams::joined(&w);
        std::iter::once(w).chain(joined)
    };
    let wanted: std::collections::HashSet<String> =
        terms.iter().flat_map(|t| t.text.split_whitespace()).flat_map(forms).collect();
    for (start, end) in spelled_words(text) {
        let word = &text[start..end];
        if forms(word).any(|f| wanted.contains(&f)) {
            needles.push(word.chars().map(key).collect());
        }
    }
    // Each once (the first time the query names it), longest first (a word before its parts,
    // the query's order among equals), and a bounded number of them: the work is needles ×
    // text, and a query may repeat a word a hundred times.
    let mut seen = std::collections::HashSet::new();
    needles.retain(|n| !n.is_empty() && seen.insert(n.clone()));
    // An English word also marks what it was found by: its stem (meetings marks Meeting).
    let mut stemmer = TextAnalyzer::builder(tantivy::tokenizer::RawTokenizer::default())
        .filter(Stemmer::new(Language::English))
        .build();
    let stems: Vec<Vec<char>> = needles.iter().filter_map(|n| english_stem(&mut stemmer, n)).collect();
    needles.extend(stems.into_iter().filter(|s| seen.insert(s.clone())));
    needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    needles.truncate(SNIPPET_NEEDLES_MAX);
    // Characters already marked: a later (shorter) match may not overlap an earlier one.
    let mut covered = vec![false; hay.len()];
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for n in &needles {
        let mut k = 0;
        while k + n.len() <= hay.len() {
            let end = (hay[k..k + n.len()].iter().map(|&(_, c)| c).eq(n.iter().copied()))
                .then(|| word_end(&hay, n, k))
                .flatten();
            match end {
                Some(end) => {
                    if !covered[k..end].contains(&true) {
                        covered[k..end].fill(true);
                        ranges.push((byte_at(k), byte_at(end)));
                    }
                    k = end;
                }
                None => k += 1,
            }
        }
    }
    ranges.sort();
    if hay.len() <= width {
        return (text.to_owned(), ranges);
    }
    let first = ranges.first().map_or(0, |r| r.0);
    let first_char = hay.iter().position(|(i, _)| *i >= first).unwrap_or(0);
    let start_char = first_char.saturating_sub(width / 3);
    let end_char = (start_char + width).min(hay.len());
    let (start, end) = (byte_at(start_char), byte_at(end_char));
    let mut out = String::new();
    let shift = if start > 0 {
        out.push('…');
        '…'.len_utf8()
    } else {
        0
    };
    out.push_str(&text[start..end]);
    if end < text.len() {
        out.push('…');
    }
    let ranges = ranges
        .into_iter()
        .filter(|&(s, e)| s >= start && e <= end)
        .map(|(s, e)| (s - start + shift, e - start + shift))
        .collect();
    (out, ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Doc {
        Doc {
            message_id: MessageId::new(),
            conversation_id: ConversationId::new(),
            sender_id: UserId::new(),
            created_at: 0,
            text: text.into(),
            has_file: false,
        }
    }

    #[test]
    fn a_damaged_index_is_replaced_but_one_in_use_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        {
            let index = SearchIndex::open(dir.path()).unwrap();
            index.apply(&[Change::Add(doc("季度报告"))]).unwrap();
            index.commit(7).unwrap();
        }
        let (index, replaced) = SearchIndex::open_or_replace(dir.path()).unwrap();
        assert!(replaced.is_none());
        assert_eq!((index.len(), index.position()), (1, 7), "a sound index is kept");
        // Another opener while this one holds the writer lock gets an error and changes nothing.
        assert!(SearchIndex::open_or_replace(dir.path()).is_err());
        assert_eq!((index.len(), index.position()), (1, 7));
        drop(index);

        std::fs::write(dir.path().join("meta.json"), b"{\"segments\": [").unwrap();
        assert!(SearchIndex::open(dir.path()).is_err());
        let (index, replaced) = SearchIndex::open_or_replace(dir.path()).unwrap();
        assert!(replaced.is_some(), "says why it was replaced");
        assert_eq!((index.len(), index.position()), (0, 0), "empty: the indexer refills it from the start");
        index.apply(&[Change::Add(doc("视频会议"))]).unwrap();
        index.commit(9).unwrap();
        drop(index);
        assert_eq!(SearchIndex::open(dir.path()).unwrap().position(), 9, "the replacement is a working index");

        // Segment files lost (the metadata still names them).
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "term" || e == "store") {
                std::fs::remove_file(path).unwrap();
            }
        }
        let (index, replaced) = SearchIndex::open_or_replace(dir.path()).unwrap();
        assert!(replaced.is_some());
        assert_eq!((index.len(), index.position()), (0, 0));
    }
}
