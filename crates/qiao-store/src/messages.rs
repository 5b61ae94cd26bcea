//! Messages, their edits, reactions and mentions, and thread roots' reply summaries.

use std::collections::HashMap;

use qiao_domain::message::{
    Mentions, Message, REACTION_USERS_SHOWN, Reaction, THREAD_PARTICIPANTS_SHOWN, ThreadSummary,
};
use qiao_domain::{ConversationId, Error, MessageId, Millis, Result, UserId};
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use crate::conn::{Db, exec, placeholders, q, value_rows};

macro_rules! columns {
    () => {
        "id, conversation_id, seq, sender_id, thread_root_id, body, mentions, client_key, created_at, edited_at, \
         deleted_at, pinned_at, pinned_by, reply_count, last_reply_at, reply_participants"
    };
}

type Row = (
    Uuid,
    Uuid,
    i64,
    Uuid,
    Option<Uuid>,
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<Uuid>,
    i64,
    Option<i64>,
    String,
);

fn from_row(r: Row) -> Result<Message> {
    let (
        id,
        conversation_id,
        seq,
        sender_id,
        root,
        body,
        mentions,
        client_key,
        created_at,
        edited_at,
        deleted_at,
        pinned_at,
        pinned_by,
        reply_count,
        last_reply_at,
        participants,
    ) = r;
    let mentions: Mentions = serde_json::from_str(&mentions).map_err(Error::internal)?;
    let participant_ids: Vec<UserId> = serde_json::from_str(&participants).map_err(Error::internal)?;
    Ok(Message {
        id: MessageId(id),
        conversation_id: ConversationId(conversation_id),
        seq,
        sender_id: UserId(sender_id),
        thread_root_id: root.map(MessageId),
        body,
        mentions,
        client_key,
        created_at,
        edited_at,
        deleted_at,
        pinned_at,
        pinned_by: pinned_by.map(UserId),
        reactions: Vec::new(),
        thread: (reply_count > 0).then_some(ThreadSummary { reply_count, last_reply_at, participant_ids }),
        files: Vec::new(),
    })
}

/// Attaches reactions and files to messages (tombstones have none).
async fn attach_reactions(db: &mut dyn Db, messages: &mut [Message]) -> Result<()> {
    let ids: Vec<Uuid> = messages.iter().filter(|m| m.deleted_at.is_none()).map(|m| m.id.0).collect();
    let mut by_message: HashMap<Uuid, Vec<Reaction>> = HashMap::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT message_id, emoji, user_id FROM reactions WHERE message_id IN ({}) \
             ORDER BY message_id, created_at, emoji, user_id",
            placeholders(0, chunk.len())
        );
        let rows = q!(db, fetch_all, {
            let mut query = sqlx::query_as::<_, (Uuid, String, Uuid)>(AssertSqlSafe(sql.clone()));
            for id in chunk {
                query = query.bind(*id);
            }
            query
        })?;
        for (message, emoji, user) in rows {
            let list = by_message.entry(message).or_default();
            match list.iter_mut().find(|r| r.emoji == emoji) {
                Some(r) => {
                    r.count += 1;
                    if r.user_ids.len() < REACTION_USERS_SHOWN {
                        r.user_ids.push(UserId(user));
                    }
                }
                None => list.push(Reaction { emoji, count: 1, user_ids: vec![UserId(user)] }),
            }
        }
    }
    for m in messages.iter_mut() {
        m.reactions = by_message.remove(&m.id.0).unwrap_or_default();
    }
    crate::files::attach_to_messages(db, messages).await
}

async fn one(db: &mut dyn Db, row: Option<Row>) -> Result<Option<Message>> {
    let mut messages = row.into_iter().map(from_row).collect::<Result<Vec<_>>>()?;
    attach_reactions(db, &mut messages).await?;
    Ok(messages.pop())
}

/// A new message.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub seq: i64,
    pub sender_id: UserId,
    pub thread_root_id: Option<MessageId>,
    pub body: String,
    pub mentions: Mentions,
    pub client_key: Option<String>,
    pub at: Millis,
}

pub async fn insert(db: &mut dyn Db, n: &NewMessage) -> Result<Message> {
    let mentions = serde_json::to_string(&n.mentions).map_err(Error::internal)?;
    exec!(
        db,
        sqlx::query(
            "INSERT INTO messages (id, conversation_id, seq, sender_id, thread_root_id, body, mentions, mentions_channel, \
             client_key, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )
        .bind(n.id.0)
        .bind(n.conversation_id.0)
        .bind(n.seq)
        .bind(n.sender_id.0)
        .bind(n.thread_root_id.map(|r| r.0))
        .bind(&n.body)
        .bind(mentions)
        .bind(n.mentions.channel)
        .bind(&n.client_key)
        .bind(n.at)
    )?;
    Ok(n.stored(n.seq))
}

impl NewMessage {
    /// The message as written, numbered `seq`.
    fn stored(&self, seq: i64) -> Message {
        Message {
            id: self.id,
            conversation_id: self.conversation_id,
            seq,
            sender_id: self.sender_id,
            thread_root_id: self.thread_root_id,
            body: self.body.clone(),
            mentions: self.mentions.clone(),
            client_key: self.client_key.clone(),
            created_at: self.at,
            edited_at: None,
            deleted_at: None,
            pinned_at: None,
            pinned_by: None,
            reactions: Vec::new(),
            thread: None,
            files: Vec::new(),
        }
    }
}

/// Inserts a message at its conversation's next sequence number, only if the sender is
/// still a member who may post (in an announcement channel, an admin or a poster) and the
/// conversation is open; `None` otherwise. One statement (the
/// `messages_advance_seq` trigger moves the conversation's `last_seq`); `n.seq` is ignored.
pub async fn insert_next(db: &mut dyn Db, n: &NewMessage) -> Result<Option<Message>> {
    let mentions = serde_json::to_string(&n.mentions).map_err(Error::internal)?;
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, (i64,)>(
            "INSERT INTO messages (id, conversation_id, seq, sender_id, thread_root_id, body, mentions, mentions_channel, \
             client_key, created_at) \
             SELECT $1, c.id, c.last_seq + 1, $3, $4, $5, $6, $7, $8, $9 FROM conversations c \
             WHERE c.id = $2 AND c.archived_at IS NULL \
               AND EXISTS (SELECT 1 FROM members m WHERE m.conversation_id = c.id AND m.user_id = $3 \
                 AND (c.kind <> 'announcement' OR m.role IN ('admin', 'poster'))) \
             RETURNING seq"
        )
        .bind(n.id.0)
        .bind(n.conversation_id.0)
        .bind(n.sender_id.0)
        .bind(n.thread_root_id.map(|r| r.0))
        .bind(&n.body)
        .bind(mentions)
        .bind(n.mentions.channel)
        .bind(&n.client_key)
        .bind(n.at)
    )?;
    Ok(row.map(|(seq,)| Message {
        id: n.id,
        conversation_id: n.conversation_id,
        seq,
        sender_id: n.sender_id,
        thread_root_id: n.thread_root_id,
        body: n.body.clone(),
        mentions: n.mentions.clone(),
        client_key: n.client_key.clone(),
        created_at: n.at,
        edited_at: None,
        deleted_at: None,
        pinned_at: None,
        pinned_by: None,
        reactions: Vec::new(),
        thread: None,
        files: Vec::new(),
    }))
}

/// Inserts plain messages (no thread) in a few multi-row statements: each at its
/// conversation's next sequence number, in the given order, and only if its sender is still
/// a member who may post there and the conversation open (`None` for those that were not). The group-commit
/// path for sends: one statement for many messages.
pub async fn insert_many(db: &mut dyn Db, drafts: &[&NewMessage]) -> Result<Vec<Option<Message>>> {
    let mut out: Vec<Option<Message>> = Vec::with_capacity(drafts.len());
    for chunk in drafts.chunks(crate::writer::ROWS_PER_STATEMENT) {
        let sql = insert_many_sql(db.dialect(), chunk.len(), "");
        let mentions = encode_mentions(chunk)?;
        let rows = q!(db, fetch_all, bind_drafts(sqlx::query_as(AssertSqlSafe(sql.clone())), chunk, &mentions))?;
        out.extend(written(chunk, rows));
    }
    Ok(out)
}

/// SQLite's writer only: `BEGIN IMMEDIATE`, the stream head's read and the insert of `drafts`
/// (at most [`crate::writer::ROWS_PER_STATEMENT`]) in one call to SQLite's thread, each call
/// being a hand-off between threads. The error carries the head if the transaction began.
pub(crate) async fn open_and_insert(
    c: &mut sqlx::SqliteConnection,
    drafts: &[&NewMessage],
) -> std::result::Result<(i64, Vec<Option<Message>>), (Option<i64>, Error)> {
    use futures_util::TryStreamExt;
    debug_assert!(drafts.len() <= crate::writer::ROWS_PER_STATEMENT);
    let sql = insert_many_sql(
        crate::conn::Dialect::Sqlite,
        drafts.len(),
        // The head's row has no id: it is told from the inserted rows by that.
        "BEGIN IMMEDIATE; SELECT NULL, pos FROM stream_head WHERE id = 1; ",
    );
    let mentions = encode_mentions(drafts).map_err(|e| (None, e))?;
    let query = bind_drafts(sqlx::query_as(AssertSqlSafe(sql)), drafts, &mentions);
    let mut rows = query.fetch(c);
    // The head's row comes first: until it has, the transaction is not known to be open.
    let head = match rows.try_next().await {
        Ok(Some((None, pos))) => pos,
        Ok(_) => return Err((None, Error::internal("the stream head was not read"))),
        Err(e) => return Err((None, Error::unavailable(e))),
    };
    let mut inserted = Vec::with_capacity(drafts.len());
    loop {
        match rows.try_next().await {
            Ok(Some(row)) => inserted.push(row),
            Ok(None) => break,
            Err(e) => return Err((Some(head), crate::db_err(e))),
        }
    }
    Ok((head, written(drafts, inserted).collect()))
}

/// The multi-row insert of `n` drafts after `prefix` (statements run first in the same call).
/// It returns `(id, seq)` for each draft written (those whose conversation is open and has
/// the sender as a member).
fn insert_many_sql(dialect: crate::conn::Dialect, n: usize, prefix: &str) -> String {
    let rows = value_rows(dialect, n, 9);
    // Only placeholders are spliced in. The CTE is materialised so that every row is
    // numbered from the sequence as it was before this statement's inserts.
    format!(
        "{prefix}WITH v (ord, id, conversation_id, sender_id, body, mentions, mentions_channel, client_key, created_at) \
         AS (VALUES {rows}), \
         s AS MATERIALIZED (SELECT v.id, v.conversation_id, \
             c.last_seq + ROW_NUMBER() OVER (PARTITION BY v.conversation_id ORDER BY v.ord) AS seq, \
             v.sender_id, v.body, v.mentions, v.mentions_channel, v.client_key, v.created_at \
           FROM v JOIN conversations c ON c.id = v.conversation_id \
           WHERE c.archived_at IS NULL \
             AND EXISTS (SELECT 1 FROM members m WHERE m.conversation_id = v.conversation_id AND m.user_id = v.sender_id \
               AND (c.kind <> 'announcement' OR m.role IN ('admin', 'poster')))) \
         INSERT INTO messages (id, conversation_id, seq, sender_id, body, mentions, mentions_channel, client_key, created_at) \
         SELECT id, conversation_id, seq, sender_id, body, mentions, mentions_channel, client_key, created_at FROM s \
         RETURNING id, seq"
    )
}

fn encode_mentions(drafts: &[&NewMessage]) -> Result<Vec<String>> {
    drafts.iter().map(|d| serde_json::to_string(&d.mentions).map_err(Error::internal)).collect()
}

/// Binds [`insert_many_sql`]'s parameters. Rows are `(id, seq)`; the id is optional only so
/// that [`open_and_insert`]'s first row (the head) shares the type.
type Inserted = (Option<Uuid>, i64);

fn bind_drafts<'q, DB>(
    mut query: sqlx::query::QueryAs<'q, DB, Inserted, DB::Arguments>,
    drafts: &'q [&NewMessage],
    mentions: &'q [String],
) -> sqlx::query::QueryAs<'q, DB, Inserted, DB::Arguments>
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Uuid: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for (i, (d, mentions)) in drafts.iter().zip(mentions).enumerate() {
        query = query
            .bind(i as i64)
            .bind(d.id.0)
            .bind(d.conversation_id.0)
            .bind(d.sender_id.0)
            .bind(d.body.as_str())
            .bind(mentions.as_str())
            .bind(d.mentions.channel)
            .bind(d.client_key.as_deref())
            .bind(d.at);
    }
    query
}

/// The messages of `drafts` that were written, by the `(id, seq)` rows the insert returned.
fn written<'a>(drafts: &'a [&NewMessage], rows: Vec<Inserted>) -> impl Iterator<Item = Option<Message>> + 'a {
    let seqs: HashMap<Uuid, i64> = rows.into_iter().filter_map(|(id, seq)| Some((id?, seq))).collect();
    // Plain sends have no thread (insert_many_sql writes none).
    drafts.iter().map(move |d| seqs.get(&d.id.0).map(|&seq| Message { thread_root_id: None, ..d.stored(seq) }))
}

pub async fn get(db: &mut dyn Db, id: MessageId) -> Result<Option<Message>> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, Row>(concat!("SELECT ", columns!(), " FROM messages WHERE id = $1")).bind(id.0)
    )?;
    one(db, row).await
}

/// The messages with these ids that exist, in no particular order (one query per 500 ids,
/// reactions included, as [`get`] gives them).
pub async fn get_many(db: &mut dyn Db, ids: &[MessageId]) -> Result<Vec<Message>> {
    let mut messages = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        // Only numbered placeholders are spliced in.
        let sql =
            format!(concat!("SELECT ", columns!(), " FROM messages WHERE id IN ({})"), placeholders(0, chunk.len()));
        let rows = q!(db, fetch_all, {
            let mut query = sqlx::query_as::<_, Row>(AssertSqlSafe(sql.clone()));
            for id in chunk {
                query = query.bind(id.0);
            }
            query
        })?;
        for row in rows {
            messages.push(from_row(row)?);
        }
    }
    attach_reactions(db, &mut messages).await?;
    Ok(messages)
}

/// Live (not deleted) messages after `after` in id order (time order: ids are UUIDv7), with
/// their files: for rebuilding derived indexes page by page.
pub async fn live_after(db: &mut dyn Db, after: Option<MessageId>, limit: i64) -> Result<Vec<Message>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, Row>(concat!(
            "SELECT ",
            columns!(),
            " FROM messages WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after.map_or(Uuid::nil(), |m| m.0))
        .bind(limit)
    )?;
    let mut messages = rows.into_iter().map(from_row).collect::<Result<Vec<_>>>()?;
    attach_reactions(db, &mut messages).await?;
    Ok(messages)
}

/// How many live messages there are (the total a rebuild reports progress against).
pub async fn count_live(db: &mut dyn Db) -> Result<i64> {
    let (n,) = q!(
        db,
        fetch_one,
        sqlx::query_as::<_, (i64,)>("SELECT CAST(COUNT(*) AS BIGINT) FROM messages WHERE deleted_at IS NULL")
    )?;
    Ok(n)
}

/// The message a sender already sent with this idempotency key.
pub async fn by_client_key(db: &mut dyn Db, sender: UserId, key: &str) -> Result<Option<Message>> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, Row>(concat!(
            "SELECT ",
            columns!(),
            " FROM messages WHERE sender_id = $1 AND client_key = $2"
        ))
        .bind(sender.0)
        .bind(key)
    )?;
    one(db, row).await
}

/// Where a page of history starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// The newest messages.
    Latest,
    /// Messages before this sequence number.
    Before(i64),
    /// Messages after this sequence number.
    After(i64),
    /// Messages around this sequence number, it included.
    Around(i64),
}

/// A page of history in ascending order, with whether more exists on each side.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub items: Vec<Message>,
    pub more_before: bool,
    pub more_after: bool,
}

/// Top-level messages of a conversation (`thread` = None) or the replies of one thread.
pub async fn page(
    db: &mut dyn Db,
    conversation: ConversationId,
    thread: Option<MessageId>,
    anchor: Anchor,
    limit: u32,
) -> Result<Page> {
    let n = usize::try_from(limit.max(1)).unwrap_or(1);
    let mut page = Page::default();
    let exists = |v: &Vec<Message>| !v.is_empty();
    match anchor {
        Anchor::Latest | Anchor::Before(_) => {
            let below = if let Anchor::Before(s) = anchor { s } else { i64::MAX };
            let mut older = side(db, conversation, thread, below, n + 1, true).await?;
            page.more_before = older.len() > n;
            older.truncate(n);
            older.reverse();
            page.items = older;
            if anchor != Anchor::Latest {
                page.more_after = exists(&side(db, conversation, thread, below.saturating_sub(1), 1, false).await?);
            }
        }
        Anchor::After(s) => {
            let mut newer = side(db, conversation, thread, s, n + 1, false).await?;
            page.more_after = newer.len() > n;
            newer.truncate(n);
            page.items = newer;
            page.more_before = exists(&side(db, conversation, thread, s.saturating_add(1), 1, true).await?);
        }
        Anchor::Around(s) => {
            let (before, after) = (n.div_ceil(2), n / 2);
            let mut older = side(db, conversation, thread, s.saturating_add(1), before + 1, true).await?;
            page.more_before = older.len() > before;
            older.truncate(before);
            older.reverse();
            let mut newer = side(db, conversation, thread, s, after + 1, false).await?;
            page.more_after = newer.len() > after;
            newer.truncate(after);
            page.items = older;
            page.items.extend(newer);
        }
    }
    attach_reactions(db, &mut page.items).await?;
    Ok(page)
}

/// Up to `n` messages on one side of `seq` (exclusive), nearest first.
async fn side(
    db: &mut dyn Db,
    conversation: ConversationId,
    thread: Option<MessageId>,
    seq: i64,
    n: usize,
    older: bool,
) -> Result<Vec<Message>> {
    let scope =
        if thread.is_some() { "thread_root_id = $1" } else { "conversation_id = $1 AND thread_root_id IS NULL" };
    let (cmp, order) = if older { ("<", "DESC") } else { (">", "ASC") };
    // Only constant fragments are spliced in.
    let sql =
        format!("SELECT {} FROM messages WHERE {scope} AND seq {cmp} $2 ORDER BY seq {order} LIMIT $3", columns!());
    let key = thread.map_or(conversation.0, |t| t.0);
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let rows = q!(db, fetch_all, sqlx::query_as::<_, Row>(AssertSqlSafe(sql.clone())).bind(key).bind(seq).bind(n))?;
    rows.into_iter().map(from_row).collect()
}

/// An earlier version of an edited message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub edited_at: Millis,
    pub editor_id: UserId,
    /// The body before this edit.
    pub body: String,
}

/// Replaces the body (keeping the previous one in the edit history) and the mentions.
pub async fn edit(
    db: &mut dyn Db,
    id: MessageId,
    body: &str,
    mentions: &Mentions,
    at: Millis,
    editor: UserId,
) -> Result<()> {
    let previous = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, (String,)>("SELECT body FROM messages WHERE id = $1 AND deleted_at IS NULL").bind(id.0)
    )?
    .ok_or_else(Error::not_found)?;
    exec!(
        db,
        sqlx::query("INSERT INTO message_edits (message_id, edited_at, editor_id, body) VALUES ($1, $2, $3, $4)")
            .bind(id.0)
            .bind(at)
            .bind(editor.0)
            .bind(previous.0)
    )?;
    let mentions_json = serde_json::to_string(mentions).map_err(Error::internal)?;
    exec!(
        db,
        sqlx::query(
            "UPDATE messages SET body = $2, mentions = $3, mentions_channel = $4, edited_at = $5 WHERE id = $1"
        )
        .bind(id.0)
        .bind(body)
        .bind(mentions_json)
        .bind(mentions.channel)
        .bind(at)
    )?;
    Ok(())
}

/// Earlier versions, oldest first.
pub async fn edits(db: &mut dyn Db, id: MessageId) -> Result<Vec<Edit>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (i64, Uuid, String)>(
            "SELECT edited_at, editor_id, body FROM message_edits WHERE message_id = $1 ORDER BY edited_at"
        )
        .bind(id.0)
    )?;
    Ok(rows.into_iter().map(|(edited_at, editor, body)| Edit { edited_at, editor_id: UserId(editor), body }).collect())
}

/// How many earlier versions a message has.
pub async fn edit_count(db: &mut dyn Db, id: MessageId) -> Result<i64> {
    let (n,) = q!(
        db,
        fetch_one,
        sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM message_edits WHERE message_id = $1").bind(id.0)
    )?;
    Ok(n)
}

/// Deletes a message's content: body, mentions, reactions, pin and edit history go; the row
/// stays as a tombstone so history keeps its shape.
pub async fn tombstone(db: &mut dyn Db, id: MessageId, at: Millis) -> Result<()> {
    let none = serde_json::to_string(&Mentions::default()).map_err(Error::internal)?;
    exec!(
        db,
        sqlx::query(
            "UPDATE messages SET body = '', mentions = $3, mentions_channel = FALSE, deleted_at = $2, pinned_at = NULL, \
             pinned_by = NULL WHERE id = $1"
        )
        .bind(id.0)
        .bind(at)
        .bind(none)
    )?;
    exec!(db, sqlx::query("DELETE FROM reactions WHERE message_id = $1").bind(id.0))?;
    exec!(db, sqlx::query("DELETE FROM mentions WHERE message_id = $1").bind(id.0))?;
    exec!(db, sqlx::query("DELETE FROM message_edits WHERE message_id = $1").bind(id.0))?;
    Ok(())
}

/// Pins (`Some((at, by))`) or unpins (`None`).
pub async fn set_pinned(db: &mut dyn Db, id: MessageId, pin: Option<(Millis, UserId)>) -> Result<()> {
    exec!(
        db,
        sqlx::query("UPDATE messages SET pinned_at = $2, pinned_by = $3 WHERE id = $1")
            .bind(id.0)
            .bind(pin.map(|p| p.0))
            .bind(pin.map(|p| p.1.0))
    )?;
    Ok(())
}

/// Pinned messages, most recently pinned first.
pub async fn pinned(db: &mut dyn Db, conversation: ConversationId) -> Result<Vec<Message>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, Row>(concat!(
            "SELECT ",
            columns!(),
            " FROM messages WHERE conversation_id = $1 AND pinned_at IS NOT NULL ORDER BY pinned_at DESC, seq DESC"
        ))
        .bind(conversation.0)
    )?;
    let mut messages = rows.into_iter().map(from_row).collect::<Result<Vec<_>>>()?;
    attach_reactions(db, &mut messages).await?;
    Ok(messages)
}

pub async fn count_pinned(db: &mut dyn Db, conversation: ConversationId) -> Result<i64> {
    let (n,) = q!(
        db,
        fetch_one,
        sqlx::query_as::<_, (i64,)>(
            "SELECT COUNT(*) FROM messages WHERE conversation_id = $1 AND pinned_at IS NOT NULL"
        )
        .bind(conversation.0)
    )?;
    Ok(n)
}

/// Counts a reply on its thread root; returns the root's new summary.
pub async fn add_reply(db: &mut dyn Db, root: MessageId, replier: UserId, at: Millis) -> Result<ThreadSummary> {
    let (count, participants) = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, (i64, String)>("SELECT reply_count, reply_participants FROM messages WHERE id = $1")
            .bind(root.0)
    )?
    .ok_or_else(Error::not_found)?;
    let mut participant_ids: Vec<UserId> = serde_json::from_str(&participants).map_err(Error::internal)?;
    if !participant_ids.contains(&replier) && participant_ids.len() < THREAD_PARTICIPANTS_SHOWN {
        participant_ids.push(replier);
    }
    let summary = ThreadSummary { reply_count: count + 1, last_reply_at: Some(at), participant_ids };
    set_summary(db, root, &summary).await?;
    Ok(summary)
}

async fn set_summary(db: &mut dyn Db, root: MessageId, summary: &ThreadSummary) -> Result<()> {
    exec!(
        db,
        sqlx::query("UPDATE messages SET reply_count = $2, last_reply_at = $3, reply_participants = $4 WHERE id = $1")
            .bind(root.0)
            .bind(summary.reply_count)
            .bind(summary.last_reply_at)
            .bind(serde_json::to_string(&summary.participant_ids).map_err(Error::internal)?)
    )?;
    Ok(())
}

/// Counts a thread's replies again from those not deleted (a reply was deleted): the count,
/// the last reply's time and who replied, earliest first.
pub async fn recount_replies(db: &mut dyn Db, root: MessageId) -> Result<ThreadSummary> {
    let (count, last) = q!(
        db,
        fetch_one,
        sqlx::query_as::<_, (i64, Option<i64>)>(
            "SELECT COUNT(*), MAX(created_at) FROM messages WHERE thread_root_id = $1 AND deleted_at IS NULL"
        )
        .bind(root.0)
    )?;
    let senders = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (Uuid, i64)>(
            "SELECT sender_id, MIN(seq) AS first FROM messages WHERE thread_root_id = $1 AND deleted_at IS NULL \
             GROUP BY sender_id ORDER BY first LIMIT $2"
        )
        .bind(root.0)
        .bind(THREAD_PARTICIPANTS_SHOWN as i64)
    )?;
    let summary = ThreadSummary {
        reply_count: count,
        last_reply_at: last,
        participant_ids: senders.into_iter().map(|(u, _)| UserId(u)).collect(),
    };
    set_summary(db, root, &summary).await?;
    Ok(summary)
}

/// Adds a reaction; false if the person had already reacted with that emoji.
pub async fn add_reaction(db: &mut dyn Db, id: MessageId, emoji: &str, user: UserId, at: Millis) -> Result<bool> {
    let n = exec!(
        db,
        sqlx::query(
            "INSERT INTO reactions (message_id, emoji, user_id, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
        )
        .bind(id.0)
        .bind(emoji)
        .bind(user.0)
        .bind(at)
    )?;
    Ok(n > 0)
}

/// Removes a reaction; false if there was none.
pub async fn remove_reaction(db: &mut dyn Db, id: MessageId, emoji: &str, user: UserId) -> Result<bool> {
    let n = exec!(
        db,
        sqlx::query("DELETE FROM reactions WHERE message_id = $1 AND emoji = $2 AND user_id = $3")
            .bind(id.0)
            .bind(emoji)
            .bind(user.0)
    )?;
    Ok(n > 0)
}

/// How many distinct emoji a message carries.
pub async fn emoji_count(db: &mut dyn Db, id: MessageId) -> Result<i64> {
    let (n,) = q!(
        db,
        fetch_one,
        sqlx::query_as::<_, (i64,)>("SELECT COUNT(DISTINCT emoji) FROM reactions WHERE message_id = $1").bind(id.0)
    )?;
    Ok(n)
}

/// Records that `message` mentions each of `users`.
pub async fn insert_mentions(db: &mut dyn Db, message: &Message, users: &[UserId]) -> Result<()> {
    // Multi-row inserts of 64, 32, …, 1 rows: a department mention may reach thousands, and
    // a handful of statement shapes stays in the writer's statement cache.
    let dialect = db.dialect();
    let mut rest = users;
    while !rest.is_empty() {
        let n = if rest.len() >= 64 { 64 } else { 1 << rest.len().ilog2() };
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        // Only placeholders are spliced in.
        let sql = format!(
            "INSERT INTO mentions (user_id, message_id, conversation_id, seq, thread_root_id) VALUES {} \
             ON CONFLICT DO NOTHING",
            value_rows(dialect, n, 5)
        );
        exec!(db, {
            let mut query = sqlx::query(AssertSqlSafe(sql.clone()));
            for u in chunk {
                query = query
                    .bind(u.0)
                    .bind(message.id.0)
                    .bind(message.conversation_id.0)
                    .bind(message.seq)
                    .bind(message.thread_root_id.map(|r| r.0));
            }
            query
        })?;
    }
    Ok(())
}

/// Forgets a message's mentions (before re-recording them after an edit); returns who was
/// mentioned.
pub async fn delete_mentions(db: &mut dyn Db, message: MessageId) -> Result<Vec<UserId>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (Uuid,)>("DELETE FROM mentions WHERE message_id = $1 RETURNING user_id").bind(message.0)
    )?;
    Ok(rows.into_iter().map(|(u,)| UserId(u)).collect())
}
