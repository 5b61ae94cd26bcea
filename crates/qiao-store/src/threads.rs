//! Who follows which thread, and how far they have read it.

use qiao_domain::{ConversationId, MessageId, Result, UserId};
use uuid::Uuid;

use crate::conn::{Db, exec, q};

/// Starts following a thread (or keeps following), reading up to at least `read_seq`.
pub async fn follow(
    db: &mut dyn Db,
    user: UserId,
    root: MessageId,
    conversation: ConversationId,
    read_seq: i64,
) -> Result<()> {
    exec!(
        db,
        sqlx::query(
            "INSERT INTO thread_follows (user_id, root_id, conversation_id, read_seq) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, root_id) DO UPDATE SET read_seq = CASE WHEN excluded.read_seq > thread_follows.read_seq \
             THEN excluded.read_seq ELSE thread_follows.read_seq END"
        )
        .bind(user.0)
        .bind(root.0)
        .bind(conversation.0)
        .bind(read_seq)
    )?;
    Ok(())
}

/// Stops following; true if the person was following.
pub async fn unfollow(db: &mut dyn Db, user: UserId, root: MessageId) -> Result<bool> {
    let n = exec!(
        db,
        sqlx::query("DELETE FROM thread_follows WHERE user_id = $1 AND root_id = $2").bind(user.0).bind(root.0)
    )?;
    Ok(n > 0)
}

/// Forgets every thread `user` followed in `conversation` (they left it); returns the roots
/// of the threads they no longer follow, in id order (their devices are told).
pub async fn unfollow_in(db: &mut dyn Db, user: UserId, conversation: ConversationId) -> Result<Vec<MessageId>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (Uuid,)>(
            "DELETE FROM thread_follows WHERE user_id = $1 AND conversation_id = $2 RETURNING root_id"
        )
        .bind(user.0)
        .bind(conversation.0)
    )?;
    let mut roots: Vec<MessageId> = rows.into_iter().map(|(r,)| MessageId(r)).collect();
    roots.sort();
    Ok(roots)
}

/// The person's read position in a thread they follow.
pub async fn read_position(db: &mut dyn Db, user: UserId, root: MessageId) -> Result<Option<i64>> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, (i64,)>("SELECT read_seq FROM thread_follows WHERE user_id = $1 AND root_id = $2")
            .bind(user.0)
            .bind(root.0)
    )?;
    Ok(row.map(|(s,)| s))
}

/// Moves the read position in a followed thread.
pub async fn set_read(db: &mut dyn Db, user: UserId, root: MessageId, read_seq: i64) -> Result<()> {
    exec!(
        db,
        sqlx::query("UPDATE thread_follows SET read_seq = $3 WHERE user_id = $1 AND root_id = $2")
            .bind(user.0)
            .bind(root.0)
            .bind(read_seq)
    )?;
    Ok(())
}

/// A followed thread's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowedThread {
    pub root_id: MessageId,
    pub conversation_id: ConversationId,
    pub read_seq: i64,
    /// Replies from others after `read_seq`.
    pub unread_count: i64,
    /// Replies from others after `read_seq` that mention the person, or everyone following
    /// the thread (`@channel` in a reply).
    pub mention_count: i64,
    pub last_reply_at: Option<i64>,
    /// The sequence number of the thread's latest reply (a client counting replies as they
    /// arrive skips those this already counts).
    pub last_reply_seq: Option<i64>,
    /// What the list is ordered by: the latest reply's time, or the root's without replies.
    pub sort_at: i64,
}

/// Threads the person follows in conversations they are still in, most recent reply (or,
/// without replies, the root's time) first, then by root id; `after` continues from a
/// thread's (`sort_at`, root id) on an earlier page. Counts are computed for the page only.
pub async fn followed(
    db: &mut dyn Db,
    user: UserId,
    after: Option<(i64, MessageId)>,
    limit: u32,
) -> Result<Vec<FollowedThread>> {
    // No cursor: every key is below the largest one.
    let (after_at, after_id) = after.map_or((i64::MAX, Uuid::max()), |(at, id)| (at, id.0));
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (Uuid, Uuid, i64, i64, i64, Option<i64>, Option<i64>, i64)>(
            "SELECT p.root_id, p.conversation_id, p.read_seq, \
               (SELECT COUNT(*) FROM messages r WHERE r.thread_root_id = p.root_id AND r.seq > p.read_seq \
                  AND r.deleted_at IS NULL AND r.sender_id <> p.user_id), \
               (SELECT COUNT(*) FROM mentions x WHERE x.user_id = p.user_id AND x.conversation_id = p.conversation_id \
                  AND x.thread_root_id = p.root_id \
                  AND x.seq > p.read_seq) + \
               (SELECT COUNT(*) FROM messages z WHERE z.thread_root_id = p.root_id AND z.mentions_channel \
                  AND z.seq > p.read_seq AND z.deleted_at IS NULL AND z.sender_id <> p.user_id \
                  AND NOT EXISTS (SELECT 1 FROM mentions w WHERE w.user_id = p.user_id AND w.message_id = z.id)), \
               p.last_reply_at, \
               (SELECT MAX(l.seq) FROM messages l WHERE l.thread_root_id = p.root_id), \
               p.sort_at \
             FROM (SELECT f.root_id, f.conversation_id, f.read_seq, f.user_id, m.last_reply_at, \
                     COALESCE(m.last_reply_at, m.created_at) AS sort_at \
                   FROM thread_follows f JOIN messages m ON m.id = f.root_id \
                   JOIN members mb ON mb.conversation_id = f.conversation_id AND mb.user_id = f.user_id \
                   WHERE f.user_id = $1 \
                     AND (COALESCE(m.last_reply_at, m.created_at) < $2 \
                          OR (COALESCE(m.last_reply_at, m.created_at) = $2 AND f.root_id < $3)) \
                   ORDER BY sort_at DESC, f.root_id DESC LIMIT $4) p \
             ORDER BY p.sort_at DESC, p.root_id DESC"
        )
        .bind(user.0)
        .bind(after_at)
        .bind(after_id)
        .bind(i64::from(limit))
    )?;
    Ok(rows
        .into_iter()
        .map(|(root, conv, read_seq, unread_count, mention_count, last_reply_at, last_reply_seq, sort_at)| {
            FollowedThread {
                root_id: MessageId(root),
                conversation_id: ConversationId(conv),
                read_seq,
                unread_count,
                mention_count,
                last_reply_at,
                last_reply_seq,
                sort_at,
            }
        })
        .collect())
}
