//! Search: the query use case (permission-filtered at the moment of the query) and the
//! indexer that keeps the search index a projection of the store. The indexer follows the
//! committed events from the hub, catches up from the event log after a restart or when it
//! falls behind, and rebuilds from the messages when the log no longer reaches back far enough.

use std::sync::Arc;
use std::time::Duration;

use qiao_domain::event::{EventData, EventFrame};
use qiao_domain::message::Message;
use qiao_domain::{ConversationId, Error, ErrorCode, MessageId, Result, perm};
use qiao_search::{Change, Doc, SearchIndex};
use qiao_store::{Store, events, members, messages, users};

use crate::{Authenticated, Services, now};

/// Longest query accepted (characters).
pub const QUERY_MAX: usize = 200;
/// Most people a `from:` name stands for (people who share a name).
const FROM_NAMED_MAX: usize = 100;

/// The longest a search waits for its turn (`Services::search_permits`).
const SEARCH_WAIT: Duration = Duration::from_secs(2);

/// One part of a highlighted snippet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnippetPart {
    pub text: String,
    /// This part matched the query.
    pub highlight: bool,
}

#[derive(Clone, Debug)]
pub struct SearchHit {
    pub message: Message,
    pub snippet: Vec<SnippetPart>,
}

#[derive(Clone, Debug)]
pub struct SearchResults {
    pub items: Vec<SearchHit>,
    /// How many messages match in all.
    pub total: usize,
}

/// What the index holds of a message (nothing for a deleted one).
pub fn doc_of(m: &Message) -> Option<Doc> {
    if m.deleted_at.is_some() {
        return None;
    }
    let mut text = qiao_domain::message::without_mention_codes(&m.body);
    for f in &m.files {
        text.push('\n');
        text.push_str(&f.name);
    }
    Some(Doc {
        message_id: m.id,
        conversation_id: m.conversation_id,
        sender_id: m.sender_id,
        created_at: m.created_at,
        text,
        has_file: !m.files.is_empty(),
    })
}

fn parts(text: &str, ranges: &[(usize, usize)]) -> Vec<SnippetPart> {
    let mut out = Vec::new();
    let mut at = 0;
    for &(s, e) in ranges {
        if s > at {
            out.push(SnippetPart { text: text[at..s].to_owned(), highlight: false });
        }
        out.push(SnippetPart { text: text[s..e].to_owned(), highlight: true });
        at = e;
    }
    if at < text.len() {
        out.push(SnippetPart { text: text[at..].to_owned(), highlight: false });
    }
    out
}

impl Services {
    /// Messages matching `query` in the conversations the caller may read right now: those
    /// they are in and, for staff, public channels. `before:`/`after:` dates are days at
    /// `tz_offset_minutes` from UTC (the searcher's).
    pub async fn search_messages(
        &self,
        auth: &Authenticated,
        query: &str,
        offset: usize,
        limit: usize,
        tz_offset_minutes: i32,
    ) -> Result<SearchResults> {
        // Limits the document states for the parameter (length, something besides spaces)
        // are `invalid_parameter`, as for every query parameter; what only parsing finds (an
        // unknown filter, nothing searchable) is `invalid_input`.
        let refuse = |message: String| Error::new(ErrorCode::InvalidParameter).with_field("q").with_message(message);
        if query.chars().count() > QUERY_MAX {
            return Err(refuse(format!("The query is at most {QUERY_MAX} characters.")));
        }
        if query.chars().all(char::is_whitespace) {
            return Err(refuse("Type words to search for, or a filter such as from:username.".into()));
        }
        // NUL matches nothing (and PostgreSQL refuses it in the names filters look up).
        let query = query.replace('\0', " ");
        let parsed = qiao_search::parse(&query).map_err(|m| Error::invalid("q", m))?;
        if parsed.is_empty() {
            return Err(Error::invalid("q", "type words to search for, or a filter such as from:username"));
        }
        self.search_rate.check(auth.user.id)?;
        let mut r = self.store.reader().await?;
        let staff = !auth.actor.is_guest();
        let allowed: Vec<ConversationId> = match &parsed.in_conversation {
            None => members::searchable_ids(&mut r, auth.user.id, staff).await?,
            Some(name) => members::conversation_ids_named(&mut r, auth.user.id, staff, name).await?,
        };
        // `from:` names a username or, failing that, everyone of that name (张伟 and
        // zhangwei find every 张伟).
        let senders = match &parsed.from {
            Some(who) => {
                let mut ids = users::ids_by_usernames(&mut r, std::slice::from_ref(who)).await?;
                if ids.is_empty() {
                    ids = users::ids_named(&mut r, who, FROM_NAMED_MAX).await?;
                }
                if ids.is_empty() {
                    return Ok(SearchResults { items: Vec::new(), total: 0 });
                }
                ids
            }
            None => Vec::new(),
        };
        const DAY: i64 = 86_400_000;
        // A day starts at local midnight: that many minutes before UTC's.
        let midnight = |d: i64| d * DAY - i64::from(tz_offset_minutes) * 60_000;
        let (from_ms, to_ms) = (parsed.after_day.map(|d| midnight(d + 1)), parsed.before_day.map(midnight));
        let (has_file, at) = (parsed.has_file, now());
        let index = self.search.clone();
        let terms = parsed.terms.clone();
        // At most half the cores search at once (each search may read much of the index): a
        // burst of them must not take every core and the blocking threads that password
        // checks, image decoding and file storage also use. A search that cannot start
        // within two seconds is refused (503, try again).
        let _turn = crate::ratelimit::turn(
            &self.search_permits,
            SEARCH_WAIT,
            "qiao_searches_refused_total",
            "Search is busy just now; try again in a moment.",
        )
        .await?;
        let (hits, total) = tokio::task::spawn_blocking(move || {
            index.search(&qiao_search::Search {
                terms: &terms,
                conversations: &allowed,
                senders: &senders,
                has_file,
                from_ms,
                to_ms,
                offset,
                limit: limit.clamp(1, 100),
                now: at,
            })
        })
        .await
        .map_err(Error::internal)?
        .map_err(Error::internal)?;
        // The index may trail the store by a moment: check each message as it is now.
        let ids: Vec<MessageId> = hits.iter().map(|h| h.message_id).collect();
        let mut current: std::collections::HashMap<MessageId, Message> =
            messages::get_many(&mut r, &ids).await?.into_iter().map(|m| (m.id, m)).collect();
        let mut items = Vec::with_capacity(hits.len());
        for hit in hits {
            let Some(m) = current.remove(&hit.message_id) else { continue };
            if m.deleted_at.is_some() {
                continue;
            }
            // A conversation the cache says is out of sight (a join it has not yet heard of) only
            // drops the hit; any other error is the store's.
            let a = match self.access_cached(&auth.actor, m.conversation_id).await {
                Ok(a) => a,
                Err(e) if e.code == qiao_domain::ErrorCode::NotFound => continue,
                Err(e) => return Err(e),
            };
            if !perm::can_read(&auth.actor, &a.facts) {
                continue;
            }
            let text = doc_of(&m).map(|d| d.text).unwrap_or_default();
            let (snippet, ranges) = qiao_search::snippet(&text, &parsed.terms, 160);
            items.push(SearchHit { snippet: parts(&snippet, &ranges), message: m });
        }
        Ok(SearchResults { items, total })
    }
}

/// What one committed event changes in the index (only message events change it). `replay`:
/// the event may already be indexed (catching up after a restart or a rebuild).
fn change_of(data: &EventData, replay: bool) -> Option<Change> {
    match data {
        EventData::MessageCreated { message, .. } => Some(match doc_of(message) {
            Some(doc) if replay => Change::Replace(doc),
            Some(doc) => Change::Add(doc),
            None => Change::Remove(message.id),
        }),
        EventData::MessageUpdated { message } => {
            Some(doc_of(message).map_or(Change::Remove(message.id), Change::Replace))
        }
        EventData::MessageDeleted { message_id, .. } => Some(Change::Remove(*message_id)),
        _ => None,
    }
}

/// Runs `f` on the index off the async runtime (tantivy may block: applying while it catches
/// up, committing).
async fn on_index(
    index: &Arc<SearchIndex>,
    f: impl FnOnce(&SearchIndex) -> qiao_search::Result<()> + Send + 'static,
) -> Result<()> {
    let index = index.clone();
    tokio::task::spawn_blocking(move || f(&index)).await.map_err(Error::internal)?.map_err(Error::internal)
}

/// Applies changes off the async runtime.
async fn apply(index: &Arc<SearchIndex>, changes: Vec<Change>) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    on_index(index, move |index| index.apply(&changes)).await
}

/// Rebuilds the index from the messages; `progress(done, total)` is called as it goes.
pub async fn rebuild(
    store: &Store,
    index: &Arc<SearchIndex>,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<()> {
    let mut r = store.reader().await?;
    let total = messages::count_live(&mut r).await?.max(0) as u64;
    // A rebuild killed midway goes on from the last message it made durable; messages
    // changed since are set right by the events after its head, as always.
    let resumed = index.rebuild_progress().and_then(|(head, after)| Some((head, after.parse().ok().map(MessageId)?)));
    let (head, mut after, mut done) = match resumed {
        Some((head, after)) => (head, Some(after), index.len()),
        None => {
            index.clear().map_err(Error::internal)?;
            // Everything after this position will be applied by the follower.
            (events::head(&mut r).await?, None, 0)
        }
    };
    progress(done.min(total), total.max(done));
    let mut pages = 0;
    loop {
        let page = messages::live_after(&mut r, after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        apply(index, page.iter().filter_map(doc_of).map(Change::Add).collect()).await?;
        done += page.len() as u64;
        progress(done.min(total.max(done)), total.max(done));
        pages += 1;
        if pages % REBUILD_COMMIT_PAGES == 0 {
            let last = last.id.0.to_string();
            on_index(index, move |index| index.commit_rebuild_progress(head, &last)).await?;
        }
    }
    on_index(index, move |index| index.commit(head)).await
}

/// Pages of 1,000 messages a rebuild adds between the commits that keep its work through a
/// restart; and events a catch-up applies between its commits.
const REBUILD_COMMIT_PAGES: u64 = 20;
const CATCH_UP_COMMIT_EVENTS: usize = 20_000;

/// Applies the event log after the index's position; false if the log no longer reaches
/// back that far (the index must be rebuilt).
async fn catch_up(store: &Store, index: &Arc<SearchIndex>, pos: &mut i64) -> Result<bool> {
    let mut r = store.reader().await?;
    let head = events::head(&mut r).await?;
    if *pos > head {
        return Ok(false); // an index from another database
    }
    if *pos < head && events::oldest(&mut r).await?.is_none_or(|oldest| oldest > *pos + 1) {
        return Ok(false);
    }
    let mut since_commit = 0;
    loop {
        let batch = events::range(&mut r, *pos, 1000).await?;
        let Some(last) = batch.last().map(|e| e.pos) else { break };
        let changes = batch
            .iter()
            .filter_map(|e| serde_json::from_str::<EventFrame>(&e.frame).ok())
            .filter_map(|frame| change_of(&frame.data, true))
            .collect();
        apply(index, changes).await?;
        *pos = last;
        // A long catch-up (days of events) keeps its work through a restart.
        since_commit += batch.len();
        if since_commit >= CATCH_UP_COMMIT_EVENTS {
            since_commit = 0;
            let at = *pos;
            on_index(index, move |index| index.commit(at)).await?;
        }
    }
    Ok(true)
}

/// How often new messages are made searchable while they keep arriving. Each commit writes a
/// segment that is merged later, so fewer, larger commits cost less per message; half a
/// second keeps a message searchable well within a second of its commit. After a quiet
/// spell the first new message is committed at once.
const COMMIT_EVERY: Duration = Duration::from_millis(500);
/// Changes held before a commit whatever the clock says (bounds memory in a burst).
const COMMIT_AT: usize = 20_000;

/// Applies changes and commits them with the position they reach, off the async runtime.
fn spawn_commit(
    index: &Arc<SearchIndex>,
    changes: Vec<Change>,
    pos: i64,
) -> tokio::task::JoinHandle<qiao_search::Result<()>> {
    let index = index.clone();
    tokio::task::spawn_blocking(move || {
        index.apply(&changes)?;
        index.commit(pos)
    })
}

/// Waits for a commit; false (after a warning) when it failed.
async fn committed(handle: tokio::task::JoinHandle<qiao_search::Result<()>>) -> bool {
    commit_ok(handle.await)
}

fn commit_ok(result: std::result::Result<qiao_search::Result<()>, tokio::task::JoinError>) -> bool {
    let error = match result {
        Ok(Ok(())) => return true,
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    tracing::warn!(%error, "committing the search index failed");
    false
}

/// Keeps the index following the store until `stop` fires: within about a second of each
/// commit, a message is searchable.
pub async fn run_indexer(
    store: Store,
    hub: qiao_bus::Hub,
    index: Arc<SearchIndex>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let mut pos = index.position();
    'outer: loop {
        // Subscribe first, then catch up: nothing committed in between is missed (events
        // already applied are skipped by position).
        let mut rx = hub.subscribe();
        match catch_up(&store, &index, &mut pos).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!("rebuilding the search index from the messages");
                let started = std::time::Instant::now();
                match rebuild(&store, &index, &mut |_, _| {}).await {
                    Ok(()) => {
                        pos = index.position();
                        tracing::info!(
                            messages = index.len(),
                            took_ms = started.elapsed().as_millis() as u64,
                            "search index rebuilt"
                        );
                        continue 'outer;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "rebuilding the search index failed; retrying");
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        continue 'outer;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "catching up the search index failed; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue 'outer;
            }
        }
        if !committed(spawn_commit(&index, Vec::new(), pos)).await {
            tokio::time::sleep(Duration::from_secs(2)).await;
            pos = index.position();
            continue 'outer;
        }
        // Changes not yet handed to the index, and the position the last commit reached.
        let mut pending: Vec<Change> = Vec::new();
        let mut scheduled = pos;
        let mut in_flight: Option<tokio::task::JoinHandle<qiao_search::Result<()>>> = None;
        let mut due = false;
        let mut tick = tokio::time::interval(COMMIT_EVERY);
        loop {
            tokio::select! {
                _ = &mut stop => {
                    if let Some(handle) = in_flight.take() {
                        committed(handle).await;
                    }
                    if scheduled < pos {
                        committed(spawn_commit(&index, pending, pos)).await;
                    }
                    return;
                }
                batch = rx.recv() => match batch {
                    Ok(batch) => {
                        // Any new event is worth a commit, message or not: the recorded position
                        // advances, so a restart does not replay it.
                        pending.extend(batch.iter().filter(|e| e.pos > pos).filter_map(|e| change_of(&e.data, false)));
                        pos = pos.max(batch.last().map_or(pos, |e| e.pos));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        // Start again from what the index holds (replays are idempotent).
                        if let Some(handle) = in_flight.take() {
                            committed(handle).await;
                        }
                        pos = index.position();
                        continue 'outer;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick() => due = true,
                result = async { in_flight.as_mut().expect("guarded by the condition").await }, if in_flight.is_some() => {
                    in_flight = None;
                    if !commit_ok(result) {
                        // Catch up again from what the index holds.
                        pos = index.position();
                        continue 'outer;
                    }
                }
            }
            if in_flight.is_none() && scheduled < pos && (due || pending.len() >= COMMIT_AT) {
                in_flight = Some(spawn_commit(&index, std::mem::take(&mut pending), pos));
                scheduled = pos;
                due = false;
            }
        }
    }
}
