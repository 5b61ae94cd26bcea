//! Search: the query use case (permission-filtered at the moment of the query) and the
//! indexer that keeps the search index a projection of the store. The indexer follows the
//! committed events from the hub, catches up from the event log after a restart or when it
//! falls behind, and rebuilds from the messages when the log no longer reaches back far enough.

use std::sync::Arc;
use std::time::Duration;

use qiao_domain::event::{EventData, EventFrame};
use qiao_domain::message::Message;
use qiao_domain::{ConversationId, Error, MessageId, Result, perm};
use qiao_search::{Doc, SearchIndex};
use qiao_store::{Store, events, members, messages, users};

use crate::{Authenticated, Services, now};

/// Longest query accepted (characters).
pub const QUERY_MAX: usize = 200;

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
    let mut text = m.body.clone();
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
    /// Messages matching `query` in the conversations the caller is in right now.
    pub async fn search_messages(
        &self,
        auth: &Authenticated,
        query: &str,
        offset: usize,
        limit: usize,
    ) -> Result<SearchResults> {
        if query.chars().count() > QUERY_MAX {
            return Err(Error::invalid("q", format!("must be at most {QUERY_MAX} characters")));
        }
        let parsed = qiao_search::parse(query).map_err(|m| Error::invalid("q", m))?;
        if parsed.is_empty() {
            return Err(Error::invalid("q", "type words to search for, or a filter such as from:username"));
        }
        let mut r = self.store.reader().await?;
        let allowed: Vec<ConversationId> = match &parsed.in_conversation {
            None => members::conversation_ids_of(&mut r, auth.user.id).await?,
            Some(name) => members::conversation_ids_named(&mut r, auth.user.id, name).await?,
        };
        let sender = match &parsed.from {
            Some(username) => match users::ids_by_usernames(&mut r, std::slice::from_ref(username)).await?.first() {
                Some(id) => Some(*id),
                None => return Ok(SearchResults { items: Vec::new(), total: 0 }),
            },
            None => None,
        };
        const DAY: i64 = 86_400_000;
        let (from_ms, to_ms) = (parsed.after_day.map(|d| (d + 1) * DAY), parsed.before_day.map(|d| d * DAY));
        let (has_file, at) = (parsed.has_file, now());
        let index = self.search.clone();
        let terms = parsed.terms.clone();
        let (hits, total) = tokio::task::spawn_blocking(move || {
            index.search(&qiao_search::Search {
                terms: &terms,
                conversations: &allowed,
                sender,
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
        let mut items = Vec::with_capacity(hits.len());
        for hit in hits {
            // The index may trail the store by a moment: check the message as it is now.
            let Some(m) = messages::get(&mut r, hit.message_id).await? else { continue };
            if m.deleted_at.is_some() {
                continue;
            }
            let a = self.access_cached(&auth.actor, m.conversation_id).await?;
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

/// Applies one committed event (only message events change the index).
fn apply(index: &SearchIndex, data: &EventData) {
    let result = match data {
        EventData::MessageCreated { message, .. } | EventData::MessageUpdated { message } => match doc_of(message) {
            Some(doc) => index.upsert(&[doc]),
            None => {
                index.delete(&[message.id]);
                Ok(())
            }
        },
        EventData::MessageDeleted { message_id, .. } => {
            index.delete(&[*message_id]);
            Ok(())
        }
        _ => return,
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "indexing a message failed");
    }
}

/// Rebuilds the index from the messages; `progress(done, total)` is called as it goes.
pub async fn rebuild(
    store: &Store,
    index: &Arc<SearchIndex>,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<()> {
    let mut r = store.reader().await?;
    // Everything after this position will be applied by the follower.
    let head = events::head(&mut r).await?;
    let total = messages::count_live(&mut r).await?.max(0) as u64;
    index.clear().map_err(Error::internal)?;
    let mut after: Option<MessageId> = None;
    let mut done = 0u64;
    progress(0, total);
    loop {
        let page = messages::live_after(&mut r, after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        let docs: Vec<Doc> = page.iter().filter_map(doc_of).collect();
        index.upsert(&docs).map_err(Error::internal)?;
        done += page.len() as u64;
        progress(done.min(total.max(done)), total.max(done));
    }
    let index = index.clone();
    tokio::task::spawn_blocking(move || index.commit(head)).await.map_err(Error::internal)?.map_err(Error::internal)?;
    Ok(())
}

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
    loop {
        let batch = events::range(&mut r, *pos, 1000).await?;
        let Some(last) = batch.last().map(|e| e.pos) else { break };
        for e in &batch {
            if let Ok(frame) = serde_json::from_str::<EventFrame>(&e.frame) {
                apply(index, &frame.data);
            }
        }
        *pos = last;
    }
    Ok(true)
}

async fn commit(index: &Arc<SearchIndex>, pos: i64) {
    let index = index.clone();
    match tokio::task::spawn_blocking(move || index.commit(pos)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "committing the search index failed"),
        Err(e) => tracing::warn!(error = %e, "committing the search index failed"),
    }
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
        commit(&index, pos).await;
        let mut dirty = false;
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = &mut stop => {
                    if dirty {
                        commit(&index, pos).await;
                    }
                    return;
                }
                batch = rx.recv() => match batch {
                    Ok(batch) => {
                        // Any new event is worth a commit, message or not: the recorded position
                        // advances, so a restart does not replay it.
                        for e in batch.iter().filter(|e| e.pos > pos) {
                            apply(&index, &e.data);
                            dirty = true;
                        }
                        pos = pos.max(batch.last().map_or(pos, |e| e.pos));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue 'outer,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick(), if dirty => {
                    commit(&index, pos).await;
                    dirty = false;
                }
            }
        }
    }
}
