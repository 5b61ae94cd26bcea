//! What each person has started writing and not sent, per conversation and per thread.

use qiao_domain::message::Draft;
use qiao_domain::{ConversationId, MessageId, Millis, Result, UserId};
use uuid::Uuid;

use crate::conn::{Db, exec, q};

/// The key column for a thread, or the nil id for the conversation's own composer.
fn thread_key(thread: Option<MessageId>) -> Uuid {
    thread.map_or(Uuid::nil(), |t| t.0)
}

/// The person's draft in a conversation or thread, if any.
pub async fn get(
    db: &mut dyn Db,
    user: UserId,
    conversation: ConversationId,
    thread: Option<MessageId>,
) -> Result<Option<Draft>> {
    let row = q!(
        db,
        fetch_optional,
        sqlx::query_as::<_, (String, i64)>(
            "SELECT body, updated_at FROM drafts WHERE user_id = $1 AND conversation_id = $2 AND thread_root_id = $3"
        )
        .bind(user.0)
        .bind(conversation.0)
        .bind(thread_key(thread))
    )?;
    Ok(row.map(|(body, updated_at)| Draft { conversation_id: conversation, thread_root_id: thread, body, updated_at }))
}

/// Stores a draft (replacing the person's previous one there); an empty body removes it.
pub async fn put(db: &mut dyn Db, user: UserId, draft: &Draft) -> Result<()> {
    if draft.body.is_empty() {
        exec!(
            db,
            sqlx::query("DELETE FROM drafts WHERE user_id = $1 AND conversation_id = $2 AND thread_root_id = $3")
                .bind(user.0)
                .bind(draft.conversation_id.0)
                .bind(thread_key(draft.thread_root_id))
        )?;
        return Ok(());
    }
    exec!(
        db,
        sqlx::query(
            "INSERT INTO drafts (user_id, conversation_id, thread_root_id, body, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id, conversation_id, thread_root_id) DO UPDATE SET body = excluded.body, \
             updated_at = excluded.updated_at"
        )
        .bind(user.0)
        .bind(draft.conversation_id.0)
        .bind(thread_key(draft.thread_root_id))
        .bind(&draft.body)
        .bind(draft.updated_at)
    )?;
    Ok(())
}

/// The person's drafts in conversations they are still in, most recent first.
pub async fn list(db: &mut dyn Db, user: UserId, limit: u32) -> Result<Vec<Draft>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (Uuid, Uuid, String, Millis)>(
            "SELECT d.conversation_id, d.thread_root_id, d.body, d.updated_at FROM drafts d \
             JOIN members m ON m.conversation_id = d.conversation_id AND m.user_id = d.user_id \
             WHERE d.user_id = $1 ORDER BY d.updated_at DESC LIMIT $2"
        )
        .bind(user.0)
        .bind(i64::from(limit))
    )?;
    Ok(rows
        .into_iter()
        .map(|(conversation, thread, body, updated_at)| Draft {
            conversation_id: ConversationId(conversation),
            thread_root_id: (!thread.is_nil()).then_some(MessageId(thread)),
            body,
            updated_at,
        })
        .collect())
}

/// Removes the person's drafts in a conversation (its own and its threads').
pub async fn delete_in(db: &mut dyn Db, user: UserId, conversation: ConversationId) -> Result<()> {
    exec!(
        db,
        sqlx::query("DELETE FROM drafts WHERE user_id = $1 AND conversation_id = $2").bind(user.0).bind(conversation.0)
    )?;
    Ok(())
}

/// Removes everyone's drafts of replies in a thread (its first message was deleted); returns
/// whose they were.
pub async fn delete_for_thread(db: &mut dyn Db, conversation: ConversationId, root: MessageId) -> Result<Vec<UserId>> {
    let rows = q!(
        db,
        fetch_all,
        sqlx::query_as::<_, (Uuid,)>(
            "DELETE FROM drafts WHERE conversation_id = $1 AND thread_root_id = $2 RETURNING user_id"
        )
        .bind(conversation.0)
        .bind(root.0)
    )?;
    Ok(rows.into_iter().map(|(u,)| UserId(u)).collect())
}

/// How many drafts the person keeps (in any conversation).
pub async fn count(db: &mut dyn Db, user: UserId) -> Result<i64> {
    let (n,) =
        q!(db, fetch_one, sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM drafts WHERE user_id = $1").bind(user.0))?;
    Ok(n)
}
