//! Files shared in conversations: their records, which message carries them, the per-person
//! usage that quotas count, and which blobs no live file refers to any more.

use std::collections::HashMap;

use qiao_domain::file::{FileInfo, FileKind};
use qiao_domain::message::Message;
use qiao_domain::{ConversationId, Error, FileId, MessageId, Millis, Result, UserId};
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use crate::conn::{Db, exec, placeholders, q};

macro_rules! columns {
    () => {
        "id, conversation_id, uploader_id, message_id, name, mime, kind, size, blob_hash, width, height, \
         duration_ms, voice, thumb_hash, preview_hash, created_at"
    };
}

type Row = (
    Uuid,
    Uuid,
    Uuid,
    Option<Uuid>,
    String,
    String,
    String,
    i64,
    String,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    bool,
    Option<String>,
    Option<String>,
    i64,
);

/// A file's record, with where its bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFile {
    pub info: FileInfo,
    pub blob_hash: String,
    pub thumb_hash: Option<String>,
    pub preview_hash: Option<String>,
}

impl StoredFile {
    /// The blobs this file refers to.
    pub fn hashes(&self) -> Vec<String> {
        let mut out = vec![self.blob_hash.clone()];
        out.extend(self.thumb_hash.clone());
        out.extend(self.preview_hash.clone());
        out
    }
}

fn from_row(r: Row) -> Result<StoredFile> {
    let kind = FileKind::parse(&r.6).ok_or_else(|| Error::internal(format!("unknown file kind {:?}", r.6)))?;
    Ok(StoredFile {
        info: FileInfo {
            id: FileId(r.0),
            conversation_id: ConversationId(r.1),
            uploader_id: UserId(r.2),
            message_id: r.3.map(MessageId),
            name: r.4,
            mime: r.5,
            kind,
            size: r.7,
            width: r.9.map(|w| w as i32),
            height: r.10.map(|h| h as i32),
            duration_ms: r.11,
            voice: r.12,
            thumbnail: r.13.is_some(),
            created_at: r.15,
        },
        blob_hash: r.8,
        thumb_hash: r.13,
        preview_hash: r.14,
    })
}

/// A file to record after its bytes are stored.
#[derive(Clone, Debug)]
pub struct NewFile {
    pub id: FileId,
    pub conversation_id: ConversationId,
    pub uploader_id: UserId,
    pub name: String,
    pub mime: String,
    pub kind: FileKind,
    pub size: i64,
    pub blob_hash: String,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub duration_ms: Option<i64>,
    pub voice: bool,
    pub thumb_hash: Option<String>,
    pub preview_hash: Option<String>,
    pub at: Millis,
}

pub async fn insert(db: &mut dyn Db, f: &NewFile) -> Result<StoredFile> {
    exec!(
        db,
        sqlx::query(concat!(
            "INSERT INTO files (",
            columns!(),
            ") VALUES ($1, $2, $3, NULL, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(f.id.0)
        .bind(f.conversation_id.0)
        .bind(f.uploader_id.0)
        .bind(&f.name)
        .bind(&f.mime)
        .bind(f.kind.as_str())
        .bind(f.size)
        .bind(&f.blob_hash)
        .bind(f.width.map(i64::from))
        .bind(f.height.map(i64::from))
        .bind(f.duration_ms)
        .bind(f.voice)
        .bind(&f.thumb_hash)
        .bind(&f.preview_hash)
        .bind(f.at)
    )?;
    get(db, f.id).await?.ok_or_else(|| Error::internal("inserted file vanished"))
}

/// A live (not deleted) file.
pub async fn get(db: &mut dyn Db, id: FileId) -> Result<Option<StoredFile>> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, Row>(concat!("SELECT ", columns!(), " FROM files WHERE id = $1 AND deleted_at IS NULL"))
            .bind(id.0)
    )?;
    row.map(from_row).transpose()
}

/// Bytes of the person's live files (what the quota counts).
pub async fn usage(db: &mut dyn Db, uploader: UserId) -> Result<i64> {
    let (n,) = q!(
        db,
        fetch_one,
        sqlx::query_as::<_, (i64,)>(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM files WHERE uploader_id = $1 AND deleted_at IS NULL"
        )
        .bind(uploader.0)
    )?;
    Ok(n)
}

/// Gives files to a message: each must be the sender's live upload to that conversation, not
/// carried by another message yet. Returns them in the order given, or `None` if any is not.
pub async fn attach(
    db: &mut dyn Db,
    ids: &[FileId],
    message: MessageId,
    sender: UserId,
    conversation: ConversationId,
) -> Result<Option<Vec<FileInfo>>> {
    let mut out = Vec::with_capacity(ids.len());
    for (order, id) in (1i64..).zip(ids) {
        let n = exec!(
            db,
            sqlx::query(
                "UPDATE files SET message_id = $2, attach_order = $5 WHERE id = $1 AND uploader_id = $3 \
                 AND conversation_id = $4 AND message_id IS NULL AND deleted_at IS NULL"
            )
            .bind(id.0)
            .bind(message.0)
            .bind(sender.0)
            .bind(conversation.0)
            .bind(order)
        )?;
        if n != 1 {
            return Ok(None);
        }
        out.push(get(db, *id).await?.ok_or_else(|| Error::internal("attached file vanished"))?.info);
    }
    Ok(Some(out))
}

/// Fills in the live files of messages (deleted messages carry none), in the order attached.
pub async fn attach_to_messages(db: &mut dyn Db, messages: &mut [Message]) -> Result<()> {
    let ids: Vec<Uuid> = messages.iter().filter(|m| m.deleted_at.is_none()).map(|m| m.id.0).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let mut by_message: HashMap<Uuid, Vec<FileInfo>> = HashMap::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            concat!(
                "SELECT ",
                columns!(),
                " FROM files WHERE message_id IN ({}) AND deleted_at IS NULL ORDER BY attach_order, created_at, id"
            ),
            placeholders(0, chunk.len())
        );
        let rows = q!(db, fetch_all, {
            let mut query = sqlx::query_as::<_, Row>(AssertSqlSafe(sql.clone()));
            for id in chunk {
                query = query.bind(*id);
            }
            query
        })?;
        for row in rows {
            let f = from_row(row)?;
            if let Some(m) = f.info.message_id {
                by_message.entry(m.0).or_default().push(f.info);
            }
        }
    }
    for m in messages.iter_mut() {
        m.files = by_message.remove(&m.id.0).unwrap_or_default();
    }
    Ok(())
}

/// How the file library is ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    /// Newest first.
    Date,
    /// A to Z.
    Name,
    /// Largest first.
    Size,
}

/// A page of a conversation's shared files (those carried by live messages) in `sort`'s order,
/// after the file `after`: a keyset, so files deleted since the previous page (the cursor's
/// own included) shift nothing. `None` if `after` is not a file of this conversation.
pub async fn library(
    db: &mut dyn Db,
    conversation: ConversationId,
    kind: Option<FileKind>,
    sort: Sort,
    after: Option<FileId>,
    limit: i64,
) -> Result<Option<Vec<FileInfo>>> {
    if let Some(a) = after {
        let known: Option<(i32,)> = q!(
            db,
            fetch_optional,
            sqlx::query_as("SELECT 1 FROM files WHERE id = $1 AND conversation_id = $2").bind(a.0).bind(conversation.0)
        )?;
        if known.is_none() {
            return Ok(None);
        }
    }
    // Each order ends with the id, so the key is unique; `c` is the cursor's file.
    let (order, past) = match sort {
        Sort::Date => {
            ("f.created_at DESC, f.id", "f.created_at < c.created_at OR (f.created_at = c.created_at AND f.id > c.id)")
        }
        Sort::Name => ("f.name, f.id", "f.name > c.name OR (f.name = c.name AND f.id > c.id)"),
        Sort::Size => ("f.size DESC, f.id", "f.size < c.size OR (f.size = c.size AND f.id > c.id)"),
    };
    let keyset = if after.is_some() {
        format!("AND EXISTS (SELECT 1 FROM files c WHERE c.id = $4 AND ({past}))")
    } else {
        String::new()
    };
    let sql = format!(
        "SELECT {} FROM files f JOIN messages m ON m.id = f.message_id \
         WHERE f.conversation_id = $1 AND f.deleted_at IS NULL AND m.deleted_at IS NULL \
         AND ($2 = '' OR f.kind = $2) {keyset} ORDER BY {order} LIMIT $3",
        columns!().split(", ").map(|c| format!("f.{c}")).collect::<Vec<_>>().join(", ")
    );
    let rows = q!(db, fetch_all, {
        let query = sqlx::query_as::<_, Row>(AssertSqlSafe(sql.clone()))
            .bind(conversation.0)
            .bind(kind.map_or("", FileKind::as_str))
            .bind(limit);
        match after {
            Some(a) => query.bind(a.0),
            None => query,
        }
    })?;
    rows.into_iter().map(|r| from_row(r).map(|f| f.info)).collect::<Result<Vec<_>>>().map(Some)
}

/// Marks a file deleted: the message carrying it (if any) as the row says at that moment;
/// `None` if it was already deleted.
pub async fn mark_deleted(db: &mut dyn Db, id: FileId, at: Millis) -> Result<Option<Option<MessageId>>> {
    // The message is read in the same statement: one sent in the meantime with this file
    // attached must be updated too, whatever the caller read before.
    let row: Option<(Option<Uuid>,)> = q!(
        db,
        fetch_optional,
        sqlx::query_as("UPDATE files SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL RETURNING message_id")
            .bind(id.0)
            .bind(at)
    )?;
    Ok(row.map(|(m,)| m.map(MessageId)))
}

/// Marks deleted, oldest first and at most `limit`, the uploads never sent in a message that
/// were made before `before`; returns them (their blobs may then be unreferenced).
pub async fn expire_unsent(db: &mut dyn Db, before: Millis, at: Millis, limit: i64) -> Result<Vec<StoredFile>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, Row>(concat!(
            "UPDATE files SET deleted_at = $2 WHERE id IN (SELECT id FROM files \
             WHERE message_id IS NULL AND deleted_at IS NULL AND created_at < $1 ORDER BY created_at LIMIT $3) \
             RETURNING ",
            columns!()
        ))
        .bind(before)
        .bind(at)
        .bind(limit)
    )?;
    let mut files = rows.into_iter().map(from_row).collect::<Result<Vec<_>>>()?;
    files.sort_by_key(|f| (f.info.created_at, f.info.id));
    Ok(files)
}

/// Marks the files a message carries deleted (the message was deleted); returns them.
pub async fn delete_for_message(db: &mut dyn Db, message: MessageId, at: Millis) -> Result<Vec<StoredFile>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, Row>(concat!(
            "SELECT ",
            columns!(),
            " FROM files WHERE message_id = $1 AND deleted_at IS NULL"
        ))
        .bind(message.0)
    )?;
    exec!(
        db,
        sqlx::query("UPDATE files SET deleted_at = $2 WHERE message_id = $1 AND deleted_at IS NULL")
            .bind(message.0)
            .bind(at)
    )?;
    rows.into_iter().map(from_row).collect()
}

/// Of these blob hashes, those no live file refers to (their bytes may be removed).
pub async fn unreferenced(db: &mut dyn Db, hashes: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for h in hashes {
        let (n,) = q!(
            db,
            fetch_one,
            sqlx::query_as::<_, (i64,)>(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM files WHERE deleted_at IS NULL \
                 AND (blob_hash = $1 OR thumb_hash = $1 OR preview_hash = $1)"
            )
            .bind(h)
        )?;
        if n == 0 && !out.contains(h) {
            out.push(h.clone());
        }
    }
    Ok(out)
}

/// Claims `hashes` for an upload about to refer to them (until `expires`); false, claiming
/// nothing, while a clean-up is removing one of them (retry shortly: it will be gone, and
/// the upload then stores the bytes anew). Run it in the writer. A removal is also queued
/// for when the claim expires: if the upload dies between storing the bytes and recording
/// its file, nothing else would ever remove them (the sweep finds them referenced otherwise
/// and only forgets the removal).
pub async fn claim_blobs(
    db: &mut dyn Db,
    claim: Uuid,
    hashes: &[String],
    now: Millis,
    expires: Millis,
) -> Result<bool> {
    for h in hashes {
        let (n,) = q!(
            db,
            fetch_one,
            sqlx::query_as::<_, (i64,)>(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM blob_claims WHERE hash = $1 AND deleting AND expires_at > $2"
            )
            .bind(h)
            .bind(now)
        )?;
        if n > 0 {
            return Ok(false);
        }
    }
    for h in hashes {
        exec!(
            db,
            sqlx::query(
                "INSERT INTO blob_claims (claim_id, hash, deleting, expires_at) VALUES ($1, $2, FALSE, $3) \
                 ON CONFLICT (claim_id, hash) DO NOTHING"
            )
            .bind(claim)
            .bind(h)
            .bind(expires)
        )?;
    }
    queue_removals(db, hashes, expires).await?;
    Ok(true)
}

/// Of `hashes`, marks for removal (under `claim`, until `expires`) those no live file refers
/// to and no upload claims, and returns them: their bytes may now be deleted, after which
/// [`release_claim`]. Run it in the writer.
pub async fn claim_for_removal(
    db: &mut dyn Db,
    claim: Uuid,
    hashes: &[String],
    now: Millis,
    expires: Millis,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for h in unreferenced(db, hashes).await? {
        let (n,) = q!(
            db,
            fetch_one,
            sqlx::query_as::<_, (i64,)>(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM blob_claims WHERE hash = $1 AND expires_at > $2"
            )
            .bind(&h)
            .bind(now)
        )?;
        if n == 0 {
            exec!(
                db,
                sqlx::query("INSERT INTO blob_claims (claim_id, hash, deleting, expires_at) VALUES ($1, $2, TRUE, $3)")
                    .bind(claim)
                    .bind(&h)
                    .bind(expires)
            )?;
            out.push(h);
        }
    }
    Ok(out)
}

/// Whether a claim still holds at `now` (an upload that waited past its claim's lifetime may
/// have had its bytes removed by then).
pub async fn claim_live(db: &mut dyn Db, claim: Uuid, now: Millis) -> Result<bool> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, (i64,)>(
            "SELECT expires_at FROM blob_claims WHERE claim_id = $1 AND expires_at > $2 LIMIT 1"
        )
        .bind(claim)
        .bind(now)
    )?;
    Ok(row.is_some())
}

/// Ends a claim (the upload's record is written, or the bytes are removed).
pub async fn release_claim(db: &mut dyn Db, claim: Uuid) -> Result<()> {
    exec!(db, sqlx::query("DELETE FROM blob_claims WHERE claim_id = $1").bind(claim))?;
    Ok(())
}

/// Forgets the claims a process that is gone left (on SQLite, which one process uses at a
/// time, at start-up): removal marks expiring before `marks_before` and upload claims
/// expiring before `uploads_before` (each kind's lifetime from the start: claims made since
/// expire later). Their removals stay queued, so the bytes are dealt with when due.
pub async fn forget_claims_before(db: &mut dyn Db, marks_before: Millis, uploads_before: Millis) -> Result<u64> {
    exec!(
        db,
        sqlx::query(
            "DELETE FROM blob_claims WHERE (deleting AND expires_at < $1) OR (NOT deleting AND expires_at < $2)"
        )
        .bind(marks_before)
        .bind(uploads_before)
    )
}

/// Forgets expired claims (of nodes that died mid-way); returns how many.
pub async fn sweep_claims(db: &mut dyn Db, now: Millis) -> Result<u64> {
    exec!(db, sqlx::query("DELETE FROM blob_claims WHERE expires_at <= $1").bind(now))
}

/// Records that the bytes of `hashes` may have to go, for [`due_removals`] to find from
/// `due_at` if the clean-up that follows the deletion does not clear them. Run it in the
/// deletion's transaction.
pub async fn queue_removals(db: &mut dyn Db, hashes: &[String], due_at: Millis) -> Result<()> {
    for h in hashes {
        exec!(
            db,
            sqlx::query("INSERT INTO blob_removals (hash, due_at) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING")
                .bind(h)
                .bind(due_at)
        )?;
    }
    Ok(())
}

/// Up to `limit` recorded removals due by `now`, oldest first.
pub async fn due_removals(db: &mut dyn Db, now: Millis, limit: i64) -> Result<Vec<String>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (String,)>(
            "SELECT hash FROM blob_removals WHERE due_at <= $1 ORDER BY due_at, hash LIMIT $2"
        )
        .bind(now)
        .bind(limit)
    )?;
    Ok(rows.into_iter().map(|(h,)| h).collect())
}

/// Forgets recorded removals of blobs a file now refers to (run in the transaction that
/// records it): they are not to be removed.
pub async fn forget_removals(db: &mut dyn Db, hashes: &[String]) -> Result<()> {
    for h in hashes {
        exec!(db, sqlx::query("DELETE FROM blob_removals WHERE hash = $1").bind(h))?;
    }
    Ok(())
}

/// Forgets recorded removals: the clean-up of their bytes has run. Those of hashes still
/// claimed at `now` stay (the clean-up skipped them: an upload, or another clean-up that may
/// die, holds them), for the sweep to try again when due.
pub async fn clear_removals(db: &mut dyn Db, hashes: &[String], now: Millis) -> Result<()> {
    for h in hashes {
        exec!(
            db,
            sqlx::query(
                "DELETE FROM blob_removals WHERE hash = $1 \
                 AND NOT EXISTS (SELECT 1 FROM blob_claims WHERE hash = $1 AND expires_at > $2)"
            )
            .bind(h)
            .bind(now)
        )?;
    }
    Ok(())
}
